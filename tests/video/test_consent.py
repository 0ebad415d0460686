"""ICE consent freshness (hub/sfu/forward.py's check, RFC 7675) between two real aioice
connections on loopback: late answers keep consent, silence ends it after the expiry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aioice
import aioice.stun
import pytest

from hub.sfu import forward
from hub.sfu.ice import IceConfig, apply_host_addresses

pytestmark = pytest.mark.asyncio


@pytest.fixture
def quick_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks every ~0.3 s, consent gone after 3 s without an answer (the hub: 5 s, 30 s)."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(forward, "CONSENT_EXPIRY_S", 3.0)
    monkeypatch.setattr(aioice.ice.Connection, "query_consent", aioice.ice.Connection.query_consent)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    apply_host_addresses(IceConfig.loopback())


@contextlib.asynccontextmanager
async def ice_pair() -> AsyncIterator[tuple[aioice.Connection, aioice.Connection]]:
    a = aioice.Connection(ice_controlling=True, components=1)
    b = aioice.Connection(ice_controlling=False, components=1)
    for conn in (a, b):
        await conn.gather_candidates()
    for here, there in ((a, b), (b, a)):
        for c in there.local_candidates:
            await here.add_remote_candidate(c)
        await here.add_remote_candidate(None)
        here.remote_username, here.remote_password = there.local_username, there.local_password
    await asyncio.gather(a.connect(), b.connect())
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def answers(conn: aioice.Connection, delay: float | None) -> None:
    """Make `conn` answer STUN requests `delay` s late (None: never)."""
    for pair in conn._nominated.values():
        protocol = pair.protocol
        send = protocol.send_stun

        def late(message: aioice.stun.Message, addr: tuple[str, int],
                 send: Callable[[aioice.stun.Message, tuple[str, int]], None] = send) -> None:
            if message.message_class != aioice.stun.Class.RESPONSE:
                send(message, addr)
            elif delay is not None:
                asyncio.get_running_loop().call_later(delay, send, message, addr)
        protocol.send_stun = late  # type: ignore[method-assign]


async def closed_within(conn: aioice.Connection, seconds: float) -> bool:
    task = conn._query_consent_task
    assert task is not None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), seconds)
        return True
    return False


async def test_answers_a_second_late_keep_consent(quick_consent: None) -> None:
    forward.install_consent_check()
    async with ice_pair() as (a, b):
        answers(b, 1.0)  # each answer comes after aioice's 0.5 s: a retransmission's wait
        assert not await closed_within(a, 6.0)  # twice the expiry
        assert a._nominated


async def test_answers_a_second_late_lose_consent_with_aioice_alone(
        quick_consent: None) -> None:
    # the check this replaces: one 0.5 s try per check, closed after 6 misses in a row
    aioice.ice.Connection.query_consent = forward.AioiceOriginal.query_consent  # type: ignore[method-assign]
    async with ice_pair() as (a, b):
        answers(b, 1.0)
        assert await closed_within(a, 6.0)


async def test_silence_ends_consent_after_the_expiry(quick_consent: None) -> None:
    forward.install_consent_check()
    async with ice_pair() as (a, b):
        answers(b, None)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await closed_within(a, 8.0)
        assert 3.0 <= loop.time() - t0 <= 3.0 + 0.36 + 3.5 + 0.5  # expiry + a check's wait
