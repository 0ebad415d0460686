"""ICE configuration: host addresses to offer, optional STUN/TURN, no public STUN by default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer


class IceConfigError(Exception):
    """An ICE setting is invalid (bad server URL, bad host address)."""


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server (`stun:host:port`, `turn:host:port?transport=udp`)."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class IceConfig:
    """Where ICE looks for candidates.

    `hosts`: local addresses to offer as host candidates; empty means every interface
    (aioice's default, which skips loopback). `servers`: STUN/TURN, empty by default
    (aiortc would otherwise use a public Google STUN server).
    """

    hosts: tuple[str, ...] = ()
    servers: tuple[IceServer, ...] = field(default_factory=tuple)

    @classmethod
    def loopback(cls) -> IceConfig:
        return cls(hosts=("127.0.0.1",))

    def rtc_configuration(self) -> RTCConfiguration:
        """An aiortc configuration with our servers (never aiortc's default) and one transport."""
        for server in self.servers:
            if not server.urls.startswith(("stun:", "turn:", "turns:")):
                raise IceConfigError(f"bad ICE server URL {server.urls!r}")
        return RTCConfiguration(
            iceServers=[RTCIceServer(s.urls, s.username, s.credential) for s in self.servers],
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )


_original_get_host_addresses: Callable[..., list[str]] = aioice.ice.get_host_addresses
_installed_hosts: tuple[str, ...] | None = None


def apply_host_addresses(config: IceConfig) -> None:
    """Make ICE gathering in this process offer `config.hosts` (all interfaces when empty).

    aioice has no per-connection setting for this, so it is process-wide: one hub process
    serves one address set. 127.0.0.1 must be given explicitly (aioice skips it).
    """
    global _installed_hosts
    hosts = tuple(config.hosts)
    for host in hosts:
        if not host or any(c.isspace() for c in host):
            raise IceConfigError(f"bad ICE host address {host!r}")
    if not hosts:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        _installed_hosts = None
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool, **_: Any) -> list[str]:
        return [h for h in hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
    _installed_hosts = hosts


def installed_hosts() -> tuple[str, ...] | None:
    """The host addresses currently forced by `apply_host_addresses` (None: all interfaces)."""
    return _installed_hosts


def parse_ice_hosts(values: Sequence[str]) -> tuple[str, ...]:
    """`--ice-host` values (repeatable or comma-separated) as a tuple of addresses."""
    return tuple(h.strip() for v in values for h in v.split(",") if h.strip())
