"""Optional parts that plug into a running hub (video routing, media), attached at start-up."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.service import Hub


async def attach_extensions(app: web.Application, hub: Hub, opts: Any) -> None:
    """Attach the extensions that are installed; none yet in this build."""
    return None
