"""Where the CJK TrueType font lives: one lookup shared by the PDF, the video wall and the pages."""

from __future__ import annotations

import os
from pathlib import Path

# Debian's fonts-wqy-microhei (installed by the set-up) first, then other common CJK fonts.
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


class FontNotFoundError(Exception):
    """No CJK font on this machine; install Debian's fonts-wqy-microhei."""


def find_cjk_font() -> Path:
    """Path of the CJK font (`COMMANDHUB_CJK_FONT` overrides the search)."""
    override = os.environ.get("COMMANDHUB_CJK_FONT")
    for candidate in ((override,) if override else CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FontNotFoundError(
        "no CJK font found (looked in " + ", ".join(CANDIDATES) + "); "
        "install one with: apt-get install fonts-wqy-microhei"
    )


def find_web_font() -> Path:
    """A CJK font a browser can load with @font-face (a single TrueType face, not a .ttc)."""
    for candidate in CANDIDATES:
        if candidate.endswith(".ttf") and Path(candidate).is_file():
            return Path(candidate)
    raise FontNotFoundError("no CJK .ttf font found; install one with: "
                            "apt-get install fonts-droid-fallback")
