"""Heads a log must extend before it is scored: one handed over out of band (`--head`) and the
latest signed head (Ed25519, the hub's checkpoints), behind one plug-in call."""

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
# when the log has no signed head, or TrustError. The hub's checkpoint module plugs in here.
SignedHeadCheck = Callable[[str], TrustedHead | None]


def no_signed_heads(path: str) -> TrustedHead | None:
    """The check used until the hub's signed checkpoints are wired in: no signed head known."""
    return None


signed_head_check: SignedHeadCheck = no_signed_heads


def heads_for(path: str, given: Head | None, check: SignedHeadCheck | None = None) -> list[TrustedHead]:
    """The heads `path` must extend: the given one and the latest signed one (either may be absent)."""
    out = [TrustedHead(given, "given")] if given is not None else []
    signed = (check or signed_head_check)(path)
    if signed is not None:
        out.append(signed)
    return out
