"""Link health per published track from aiortc getStats, and its Prometheus exposition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.sfu.peers import PacketSource, Participant


@dataclass(frozen=True)
class LinkStats:
    """One track's link health at one moment."""

    dept: str
    track: str
    fps: float
    bitrate_kbps: float
    loss_pct: float
    rtt_ms: float | None
    freezes: int
    packets_received: int
    packets_lost: int

    def event_payload(self) -> dict[str, Any]:
        return {
            "dept": self.dept, "track": self.track, "fps": round(self.fps, 2),
            "bitrate_kbps": round(self.bitrate_kbps, 1), "loss_pct": round(self.loss_pct, 2),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "freezes": self.freezes,
        }


async def collect_link_stats(
    participant: Participant, source: PacketSource, previous: LinkStats | None
) -> LinkStats:
    """Loss since `previous` from the receiver's inbound stats; RTT from the hub's senders to
    the same participant (RTCP receiver reports)."""
    received = lost = 0
    report = await source.transceiver.receiver.getStats()
    for stat in report.values():
        if getattr(stat, "type", "") == "inbound-rtp":
            received += int(getattr(stat, "packetsReceived", 0) or 0)
            lost += int(getattr(stat, "packetsLost", 0) or 0)
    d_recv = received - (previous.packets_received if previous else 0)
    d_lost = lost - (previous.packets_lost if previous else 0)
    loss_pct = 100.0 * d_lost / (d_recv + d_lost) if d_recv + d_lost > 0 else 0.0
    rtt: float | None = None
    for slot in participant.all_slots():
        sender_report = await slot.transceiver.sender.getStats()
        for stat in sender_report.values():
            value = getattr(stat, "roundTripTime", None)
            if getattr(stat, "type", "") == "remote-inbound-rtp" and value is not None:
                rtt = float(value) * 1000
                break
        if rtt is not None:
            break
    fps, kbps = source.rates()
    return LinkStats(
        dept=source.dept, track=source.kind, fps=fps, bitrate_kbps=kbps,
        loss_pct=max(0.0, loss_pct), rtt_ms=rtt, freezes=source.freezes,
        packets_received=received, packets_lost=lost,
    )


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def format_metrics(stats: dict[str, Any]) -> str:
    """Prometheus text format (0.0.4) of `VideoHub.stats()`."""
    gauges = {
        "fps": ("commandhub_track_fps", "Frames per second received by the hub"),
        "bitrate_kbps": ("commandhub_track_bitrate_kbps", "Bitrate received by the hub"),
        "loss_pct": ("commandhub_track_loss_percent", "Packet loss since the last sample"),
        "rtt_ms": ("commandhub_link_rtt_ms", "Round-trip time hub to participant"),
        "freezes": ("commandhub_track_freezes_total", "Gaps over 0.5 s between frames"),
        "frames": ("commandhub_track_frames_total", "Frames received by the hub"),
        "subscribers": ("commandhub_track_subscribers", "Slots this track is forwarded to"),
    }
    lines: list[str] = []
    participants: dict[str, Any] = stats.get("participants", {})
    for key, (name, help_text) in gauges.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for pid, p in sorted(participants.items()):
            for track, values in sorted(p.get("published", {}).items()):
                value = values.get(key)
                if value is None:
                    continue
                labels = f'participant="{_label(pid)}",dept="{_label(p.get("dept"))}",' \
                    f'track="{_label(track)}"'
                lines.append(f"{name}{{{labels}}} {float(value):g}")
    lines += [
        "# HELP commandhub_participants Participants with a peer connection",
        "# TYPE commandhub_participants gauge",
        f"commandhub_participants {len(participants)}",
        "# HELP commandhub_connected Participants whose peer connection is up",
        "# TYPE commandhub_connected gauge",
        f"commandhub_connected {sum(1 for p in participants.values() if p.get('connected'))}",
        "# HELP commandhub_outages Departments currently lost (connection)",
        "# TYPE commandhub_outages gauge",
        f"commandhub_outages {len(stats.get('outages', {}))}",
    ]
    return "\n".join(lines) + "\n"
