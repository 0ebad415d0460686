"""`serve --uplink https://... --uplink-ca FILE`: a town hub links to a city hub whose
certificate comes from a private CA (made by hub/tls.py, loopback); a town trusting another CA
does not link and says why; bad --uplink-ca options are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.bench import free_port, wait_http
from hub.cli import CliError
from hub.runtime import ServeOptions, start_hub
from hub.tiers.cluster import HubProcess, write_rosters
from hub.tls import client_context, make_self_signed
from tests.tiers.test_tiers import town_online, until


async def test_a_town_links_to_a_city_behind_a_private_ca(tmp_path: Path) -> None:
    city_ca = make_self_signed(["127.0.0.1", "localhost"], tmp_path / "city-tls")
    stranger = make_self_signed(["127.0.0.1", "localhost"], tmp_path / "other-tls")  # did not sign the city
    city_roster, rosters = write_rosters(tmp_path / "rosters", towns=2, departments=1)
    city = HubProcess("city", tmp_path / "city", free_port(), city_roster,
                      ["--tls-cert", str(city_ca.cert), "--tls-key", str(city_ca.key)])
    city.data.mkdir(parents=True)
    url = f"https://127.0.0.1:{city.port}"
    towns = [HubProcess(t, tmp_path / t, free_port(), rosters[t],
                        ["--uplink", url, "--uplink-token", city.token("hub", t),
                         "--uplink-ca", str(ca)])
             for t, ca in (("town01", city_ca.ca), ("town02", stranger.ca))]
    hubs = [city, *towns]
    try:
        for h in hubs:
            h.start()
        await wait_http(url, 90, ssl_context=client_context(city_ca.ca))
        for h in towns:
            await wait_http(h.url, 90)
        await until(lambda: town_online(city.db, "town01"), 20, "town01 linked over TLS")
        await until(lambda: "certificate verify failed" in (towns[1].data / "hub.log").read_text(
            errors="replace"), 20, "town02 says its uplink's certificate does not verify")
        assert not town_online(city.db, "town02")
    finally:
        for h in hubs:
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
