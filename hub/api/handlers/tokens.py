"""token.revoke: the body lives in Hub._h_token_revoke (beside enforce_tokens, which it drives)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.api.spec import Request
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session


async def revoke(hub: Hub, s: Session, req: Request) -> Event:
    return await hub._h_token_revoke(s, req)
