"""`link.respond` and role `hub` on the wire, as a hostile town hub would speak them (raw
WebSocket frames against the bundled roster, whose `changjiang` is a town)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.auth import AuthError
from hub.checkpoint import HeadSigner, SignedHead
from hub.logformat import Head, read_events
from hub.runtime import RunningHub
from tests.hub.raw import RawSocket, outcome

TOWN_KEY = HeadSigner(Ed25519PrivateKey.generate())


def town_head(seq: int = 5) -> str:
    return json.dumps(TOWN_KEY.sign(Head(seq, "cd" * 32), 1_800_000_000_000_000, "link").to_dict())


def answer(**over: object) -> dict[str, object]:
    return {"command_id": "C1", "response": "receipt", "town_command_id": "C4", "town_seq": 5,
            "town_ts_us": 1_800_000_000_000_000, "offset_us": -1200, "rtt_us": 800,
            "departments": [], "head": town_head(), **over}


async def test_a_town_hub_answers_for_its_town_once(running_hub: RunningHub,
                                                    token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        town = await RawSocket.open(http, running_hub.url, token("hub", "changjiang"))
        assert town.welcome["you"] == {"role": "hub", "dept": "changjiang", "name": None}
        cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
        ack = await cmdr.request("command.issue", targets=["town"], text="转移", requires=[
            "receipt", "completed"])
        assert ack["departments"] == ["changjiang"]
        await town.drain(0.5)
        [cmd] = [f for f in town.seen if f.get("type") == "command"]
        assert cmd["cause"] == "issued" and cmd["command"]["seq"] == ack["seq"]
        state = running_hub.hub.snapshot(running_hub.hub.authority.verify(
            token("commander"), now=int(time.time())))
        assert {d["id"]: d["online"] for d in state["departments"]}["changjiang"]

        tampered = json.loads(town_head())
        tampered["seq"] = 6
        bad = await town.request("link.respond", msg_id="L1", **answer(head=json.dumps(tampered)))
        assert outcome(bad) == "bad_request" and "head" in bad["message"]
        assert outcome(await town.request("command.respond", command_id="C1",
                                          response="receipt")) == "forbidden"
        fire = await RawSocket.open(http, running_hub.url, token("department", "fire"))
        assert outcome(await fire.request("link.respond", **answer())) == "forbidden"
        assert outcome(await town.request("link.respond", msg_id="L2",
                                          **answer(command_id="C9"))) == "unknown_command"

        ok = await town.request("link.respond", msg_id="L1", **answer())
        again = await town.request("link.respond", msg_id="L1", **answer())
        assert outcome(ok) == "ok" and ok["state"] == "acknowledged" and "duplicate" not in ok
        assert again["duplicate"] is True and again["seq"] == ok["seq"]
        city_head = SignedHead.from_dict(ok["head"])
        city_head.verify()  # the city's own head, signed by its log key
        assert city_head.seq >= ok["seq"]
        assert city_head.key_fingerprint == running_hub.hub.log.signer.fingerprint()  # type: ignore[union-attr]
        done = await town.request("link.respond", msg_id="L3", **answer(
            response="completed", departments=["changjiang-u1"]))
        assert outcome(done) == "ok" and done["state"] == "completed"
        for s in (town, cmdr, fire):
            await s.close()
    events = read_events(running_hub.hub.log.path)
    answers = [e for e in events if e.role == "hub" and e.kind.startswith("command.")]
    assert [(e.kind, e.dept) for e in answers] == [("command.acknowledged", "changjiang"),
                                                   ("command.completed", "changjiang")]
    link = answers[0].payload["link"]
    assert (link["command_id"], link["seq"], link["offset_us"]) == ("C4", 5, -1200)
    assert answers[0].payload["head"]["key_fingerprint"] == TOWN_KEY.fingerprint()
    SignedHead.from_dict(answers[0].payload["head"]).verify()  # logged as the town signed it


def test_a_hub_token_names_its_town(running_hub: RunningHub) -> None:
    with pytest.raises(AuthError, match="needs --dept"):
        running_hub.hub.authority.issue("hub", now=1)
    with pytest.raises(AuthError, match="unknown department"):
        running_hub.hub.authority.issue("hub", now=1, dept="atlantis")
