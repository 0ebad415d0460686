"""`serve --uplink https://... --uplink-ca FILE`: a town hub links to a city hub whose
certificate comes from a private CA (made by hub/tls.py, loopback); an uplink client trusting
another CA is refused (`bad_certificate`); bad --uplink-ca options are refused before anything
starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.bench import free_port, wait_http
from hub.cli import CliError
from hub.client import HubClient, HubClientError
from hub.runtime import ServeOptions, start_hub
from hub.tiers.cluster import HubProcess, write_rosters
from hub.tls import client_context, make_self_signed
from tests.tiers.test_tiers import town_online, until


async def test_a_town_links_to_a_city_behind_a_private_ca(tmp_path: Path) -> None:
    city_ca = make_self_signed(["127.0.0.1", "localhost"], tmp_path / "city-tls")
    stranger = make_self_signed(["127.0.0.1", "localhost"], tmp_path / "other-tls")
    city_roster, rosters = write_rosters(tmp_path / "rosters", towns=1, departments=1)
    city = HubProcess("city", tmp_path / "city", free_port(), city_roster,
                      ["--tls-cert", str(city_ca.cert), "--tls-key", str(city_ca.key)])
    city.data.mkdir(parents=True)
    url = f"https://127.0.0.1:{city.port}"
    town = HubProcess("town01", tmp_path / "town01", free_port(), rosters["town01"],
                      ["--uplink", url, "--uplink-token", city.token("hub", "town01"),
                       "--uplink-ca", str(city_ca.ca)])
    try:
        for h in (city, town):
            h.start()
        await wait_http(url, 90, ssl_context=client_context(city_ca.ca))
        await wait_http(town.url, 90)
        await until(lambda: town_online(city.db, "town01"), 20, "town01 linked over TLS")
        # an uplink trusting another CA (the context --uplink-ca makes) is refused, and says so
        stray = HubClient(url, city.token("hub", "town01"), reconnect=False,
                          ssl_context=client_context(stranger.ca))
        with pytest.raises(HubClientError) as exc:
            await stray.connect()
        assert exc.value.code == "bad_certificate" and "certificate verify failed" in str(
            exc.value)
    finally:
        for h in (town, city):
            h.stop()


@pytest.mark.parametrize(("uplink", "ca", "message"), [
    ("http://127.0.0.1:1", "ca.pem", "goes with an https:// --uplink"),
    ("https://127.0.0.1:1", "missing.pem", "not a readable PEM CA certificate"),
    ("https://127.0.0.1:1", "junk.pem", "not a readable PEM CA certificate"),
    (None, "ca.pem", "goes with an https:// --uplink"),
])
async def test_bad_uplink_ca_options_are_refused(tmp_path: Path, uplink: str | None, ca: str,
                                                 message: str) -> None:
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    make_self_signed(["127.0.0.1"], tmp_path)  # writes ca.pem's sibling hub-ca.pem
    (tmp_path / "ca.pem").write_bytes((tmp_path / "hub-ca.pem").read_bytes())
    opts = ServeOptions(data=tmp_path / "data", port=0, uplink=uplink,
                        uplink_token="t" if uplink else None, uplink_ca=str(tmp_path / ca))
    with pytest.raises(CliError, match=message):
        await start_hub(opts)
    assert not (tmp_path / "data" / "events.db").exists()  # refused before the hub started
