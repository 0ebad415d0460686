"""ICE configuration: host addresses to offer, optional STUN/TURN, no public STUN by default.

Host addresses: `--ice-host` (repeatable) chooses them; without it the hub offers every
interface address (IPv4, and global IPv6; no link-local) and 127.0.0.1, so a browser on the
hub's own machine and a loopback-only network namespace both work.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import ifaddr
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

log = logging.getLogger("commandhub.ice")
LOOPBACK = "127.0.0.1"


class IceConfigError(Exception):
    """An ICE setting is invalid (bad server URL, bad host address)."""


class NoCandidatesError(IceConfigError):
    """An SDP answer carries no ICE candidate: no peer could ever reach it."""


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server (`stun:host:port`, `turn:host:port?transport=udp`)."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class IceConfig:
    """Where ICE looks for candidates.

    `hosts`: local addresses to offer as host candidates; empty means automatic
    (`default_host_addresses()`: every interface address plus 127.0.0.1). `servers`:
    STUN/TURN, empty by default (aiortc would otherwise use a public Google STUN server).
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


_installed_hosts: tuple[str, ...] | None = None
_installed_auto = False


def usable_address(ip: str) -> bool:
    """An interface address worth offering: not loopback, not link-local, not unspecified."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast)


def default_host_addresses(adapters: Iterable[Any] | None = None) -> tuple[str, ...]:
    """Every usable interface address (IPv4 first, then global IPv6), then 127.0.0.1.

    `adapters`: as `ifaddr.get_adapters()` returns them (the machine's, by default). The
    loopback address is always there: on a loopback-only host (a test namespace, a laptop
    off the network) it is the only one, and a browser on the hub's machine can use it.
    """
    v4: list[str] = []
    v6: list[str] = []
    for adapter in ifaddr.get_adapters() if adapters is None else adapters:
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if usable_address(ip.ip):
                    v4.append(ip.ip)
            elif ip.ip[2] == 0 and usable_address(ip.ip[0]):  # no scope id: a global address
                v6.append(ip.ip[0])
    return (*dict.fromkeys(v4), *dict.fromkeys(v6), LOOPBACK)


def apply_host_addresses(config: IceConfig) -> tuple[str, ...]:
    """Make ICE gathering in this process offer `config.hosts` (automatic when empty).

    aioice has no per-connection setting for this, so it is process-wide: one hub process
    serves one address set. Returns the addresses offered (and logs them once per change).
    """
    global _installed_hosts, _installed_auto
    hosts = tuple(config.hosts)
    for host in hosts:
        if not host or any(c.isspace() for c in host):
            raise IceConfigError(f"bad ICE host address {host!r}")
    auto = not hosts
    if auto:
        hosts = default_host_addresses()

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool, **_: Any) -> list[str]:
        return [h for h in hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
    if (hosts, auto) != (_installed_hosts, _installed_auto):
        log.info("ICE host candidates offered: %s", describe_hosts(hosts, auto))
    _installed_hosts, _installed_auto = hosts, auto
    return hosts


def installed_hosts() -> tuple[str, ...] | None:
    """The host addresses ICE gathering offers (None: `apply_host_addresses` never ran)."""
    return _installed_hosts


def installed_automatically() -> bool:
    """True when the offered addresses were chosen automatically (no `--ice-host`)."""
    return _installed_auto


def describe_hosts(hosts: Sequence[str] | None = None, auto: bool | None = None) -> str:
    """`10.0.0.5, 127.0.0.1 (automatic: ...)`, for the start-up banner and error messages."""
    hosts = _installed_hosts if hosts is None else hosts
    auto = _installed_auto if auto is None else auto
    listed = ", ".join(hosts or ()) or "none"
    if auto:
        return f"{listed} (automatic: every interface address and loopback; choose with --ice-host)"
    return f"{listed} (from --ice-host)"


def require_candidates(sdp: str) -> None:
    """Raise NoCandidatesError when `sdp` has no `a=candidate` line (nothing could connect)."""
    if "a=candidate:" in sdp:
        return
    log.warning("an SDP answer has no ICE candidate; host addresses: %s", describe_hosts())
    raise NoCandidatesError(
        f"the hub gathered no ICE candidate on {describe_hosts()}: none of these addresses "
        "could be used on this machine; start the hub with --ice-host ADDRESS (an address of "
        "the hub's machine that the browsers can reach, e.g. 127.0.0.1 for a browser on it)")


def parse_ice_hosts(values: Sequence[str]) -> tuple[str, ...]:
    """`--ice-host` values (repeatable or comma-separated) as a tuple of addresses."""
    return tuple(h.strip() for v in values for h in v.split(",") if h.strip())
