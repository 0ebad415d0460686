"""Response snapshots: one JPEG per department picture, shared by the responses it illustrates.

A department answering many commands at once (a drill's burst, a bench at 100 commands a
second) shows one picture meanwhile: each response does not get its own decode, conversion,
JPEG and fsync. Per department at most one snapshot is taken at a time and at most one every
`min_interval_s`; the responses that come while one is due join it, and its `media.snapshot`
lists them all in `responses` (the first also in `command_id`, `report_id`, `ts_us`, as for
a single response). The conversion and the write run in the given executor, off the event
loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media.frames import to_bgr
from media.record import MediaError, MediaWriteError, Snapshot, write_snapshot

MIN_INTERVAL_S = 1.0  # a sample is at most 1 s old: a snapshot a second per department at most

Picture = Callable[[], Awaitable[Any]]  # the department's decoded picture (.frame), or None
Emit = Callable[[str, dict[str, Any]], None]
Spawn = Callable[[Coroutine[Any, Any, None]], Any]


@dataclass(frozen=True)
class Response:
    """A response (or field report) a snapshot illustrates."""

    ts_us: int
    command_id: str | None = None
    report_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"command_id": self.command_id, "report_id": self.report_id, "ts_us": self.ts_us}


@dataclass
class _Job:
    """A department's next snapshot and the responses waiting for it."""

    picture: Picture
    responses: list[Response] = field(default_factory=list)


class ResponseSnapshots:
    """Takes the departments' response snapshots; `take()` from the event loop."""

    def __init__(self, directory: Path, executor: concurrent.futures.Executor, *, emit: Emit,
                 on_error: Callable[[MediaError], None], spawn: Spawn,
                 min_interval_s: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._executor = executor
        self._emit = emit
        self._on_error = on_error
        self._spawn = spawn
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._jobs: dict[str, _Job] = {}  # dept -> the snapshot being waited for
        self._last: dict[str, float] = {}  # dept -> when its last picture was taken
        self.taken = 0  # JPEGs written
        self.responses = 0  # responses illustrated by them
        self.missed = 0  # responses with no picture to show

    def take(self, dept: str, picture: Picture, response: Response) -> None:
        """Illustrate `response` with `dept`'s picture: joins the department's next snapshot,
        or starts it (right away unless one was taken less than `min_interval_s` ago)."""
        job = self._jobs.get(dept)
        if job is None:
            job = self._jobs[dept] = _Job(picture)
            self._spawn(self._run(dept, job))
        job.responses.append(response)

    async def _run(self, dept: str, job: _Job) -> None:
        try:
            wait = self._last.get(dept, -self.min_interval_s) + self.min_interval_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            sample = await job.picture()
        finally:
            if self._jobs.get(dept) is job:
                del self._jobs[dept]  # from here on, responses wait for the next picture
        self._last[dept] = self._clock()
        responses = job.responses
        if sample is None:
            self.missed += len(responses)
            return
        first = responses[0]
        loop = asyncio.get_running_loop()
        try:
            snap: Snapshot = await loop.run_in_executor(self._executor, lambda: write_snapshot(
                self.directory, dept, to_bgr(sample.frame), first.ts_us,
                command_id=first.command_id, report_id=first.report_id))
        except MediaWriteError as exc:
            self._on_error(exc.error)
            return
        self.taken += 1
        self.responses += len(responses)
        self._emit("media.snapshot", {**snap.payload(), "ts_us": snap.ts_us,
                                      "responses": [r.payload() for r in responses]})

    def stats(self) -> dict[str, int]:
        return {"taken": self.taken, "responses": self.responses, "missed": self.missed,
                "pending": sum(len(j.responses) for j in self._jobs.values())}
