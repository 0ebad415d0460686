"""Heads a log must extend before it is scored: one handed over out of band (`--head`) and the
latest signed head (Ed25519, the hub's checkpoints in hub.checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.logformat import Head


class TrustError(Exception):
    """A signed head is there but does not verify (bad signature, unknown key, unreadable)."""


@dataclass(frozen=True)
class TrustedHead:
    """A head the log must extend: where it came from and, when signed, by which key."""

    head: Head
    source: str  # "given" (--head SEQ:HASH) or "signed" (the hub's signed checkpoint)
    key_fingerprint: str | None = None
    signed_ts_us: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.head.seq,
            "hash": self.head.hash,
            "source": self.source,
            "key_fingerprint": self.key_fingerprint,
            "signed_ts_us": self.signed_ts_us,
        }


# A signed-head check: given the log's path, the latest head whose signature verifies, None
# when the log has no signed head, or TrustError.
SignedHeadCheck = Callable[[str], TrustedHead | None]


def signed_head_check(path: str, key: str | None = None) -> TrustedHead | None:
    """The latest head in the log's signed sidecar (`events.db.heads`, hub.checkpoint), its
    signature verified; with `key` (a PEM file or a fingerprint, see KeyPin.parse) it must be
    signed by that key. None when the log has no sidecar."""
    from hub.checkpoint import CheckpointError, KeyPin, heads_path, latest_signed_head

    try:
        pin = KeyPin.parse(key) if key is not None else None
        if not heads_path(path).exists():
            return None
        latest = latest_signed_head(path, pin)
    except CheckpointError as exc:
        raise TrustError(str(exc)) from exc
    if latest is None:
        return None
    return TrustedHead(latest.head, "signed", latest.key_fingerprint, latest.ts_us)


def heads_for(path: str, given: Head | None, check: SignedHeadCheck | None = None) -> list[TrustedHead]:
    """The heads `path` must extend: the given one and the latest signed one (either may be absent)."""
    out = [TrustedHead(given, "given")] if given is not None else []
    signed = (check or signed_head_check)(path)
    if signed is not None:
        out.append(signed)
    return out
