"""Fixtures for the hub tests: a small real filesystem (tmpfs) to fill up or make read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

MountDisk = Callable[..., Path]


def _mount(target: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at `target`; the reason it cannot, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        str(target)], capture_output=True, text=True, check=False)
    return None if r.returncode == 0 else f"mount -t tmpfs failed: {r.stderr.strip()}"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[MountDisk]:
    """`small_disk(size="8m")` -> a fresh folder on its own tmpfs (unmounted afterwards).

    Skips with the reason when this machine cannot mount (not root, no mount permission).
    """
    mounted: list[Path] = []

    def make(size: str = "8m", name: str = "disk") -> Path:
        target = tmp_path / name
        target.mkdir()
        reason = _mount(target, size)
        if reason is not None:
            pytest.skip(reason)
        mounted.append(target)
        return target

    yield make
    for target in reversed(mounted):
        r = subprocess.run(["umount", str(target)], capture_output=True, check=False)
        if r.returncode != 0:  # something still holds it open: detach now, free when released
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def remount_readonly(target: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True, capture_output=True)


def fill(folder: Path, chunk: int = 64 * 1024) -> Path:
    """Write a filler file until the filesystem is full (ENOSPC); return it."""
    filler = folder / "filler"
    block = b"\0" * chunk
    with open(filler, "wb", buffering=0) as f:
        for _ in range(1_000_000):  # bounded: 64 GB at most
            try:
                f.write(block)
            except OSError:
                break
    with open(filler, "ab", buffering=0) as f:  # the last few bytes a 64 KiB write did not fit
        for _ in range(chunk):
            try:
                f.write(b"\0")
            except OSError:
                break
    return filler
