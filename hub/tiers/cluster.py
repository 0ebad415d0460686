"""A city hub and town hubs as separate `commandhub serve` processes on loopback (tests, bench)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hub.auth import TokenAuthority, load_secret
from hub.bench import free_port, start_hub_process, wait_http


def town_ids(n: int) -> list[str]:
    return [f"town{i + 1:02d}" for i in range(n)]


def write_rosters(root: Path, towns: int, departments: int) -> tuple[Path, dict[str, Path]]:
    """The city's roster (three city departments and the towns, tier town, group `town`) and
    each town's (its `departments` units)."""
    root.mkdir(parents=True, exist_ok=True)
    city = [{"id": d, "name_zh": d, "name_en": d, "groups": ["city"], "tier": "city"}
            for d in ("emergency", "police", "fire")]
    city += [{"id": t, "name_zh": t, "name_en": t, "groups": ["town"], "tier": "town"}
             for t in town_ids(towns)]
    city_path = root / "city.yaml"
    city_path.write_text(yaml.safe_dump({
        "center": {"id": "center", "name_zh": "市指挥中心", "name_en": "City"},
        "departments": city, "groups": {"city": {"name_zh": "市", "name_en": "City"},
                                        "town": {"name_zh": "镇街", "name_en": "Towns"}}},
        allow_unicode=True))
    paths = {}
    for t in town_ids(towns):
        units = [{"id": f"{t}-u{j + 1}", "name_zh": f"{t}-u{j + 1}", "name_en": f"{t} unit {j + 1}",
                  "groups": ["unit"], "tier": "town"} for j in range(departments)]
        paths[t] = root / f"{t}.yaml"
        paths[t].write_text(yaml.safe_dump({
            "center": {"id": "center", "name_zh": t, "name_en": t},
            "departments": units, "groups": {"unit": {"name_zh": "单位", "name_en": "Units"}}},
            allow_unicode=True))
    return city_path, paths


@dataclass
class HubProcess:
    name: str
    data: Path
    port: int
    roster: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.data / "events.db"

    def start(self) -> None:
        self.proc = start_hub_process(self.data, self.port, "--roster", str(self.roster),
                                      "--no-record", *self.extra)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def token(self, role: str, dept: str | None = None, ttl_s: int = 3600) -> str:
        auth = TokenAuthority(load_secret(self.data))
        return auth.issue(role, now=int(time.time()), ttl_s=ttl_s, dept=dept)


@dataclass
class Tiers:
    """A city hub and its towns (not started: `await start()`)."""

    city: HubProcess
    towns: dict[str, HubProcess]
    units: dict[str, list[str]]  # town -> its departments

    @classmethod
    def make(cls, root: Path, towns: int, departments: int,
             extra: Sequence[str] = ()) -> Tiers:
        """`extra`: more `serve` options for every hub (e.g. `--ice-host 127.0.0.1`)."""
        city_roster, rosters = write_rosters(root / "rosters", towns, departments)
        city = HubProcess("city", root / "city", free_port(), city_roster, list(extra))
        city.data.mkdir(parents=True, exist_ok=True)
        out: dict[str, HubProcess] = {}
        for t, path in rosters.items():
            out[t] = HubProcess(t, root / t, free_port(), path,
                                ["--uplink", city.url, "--uplink-token",
                                 city.token("hub", t, ttl_s=86400), *extra])
        units = {t: [f"{t}-u{j + 1}" for j in range(departments)] for t in rosters}
        return cls(city, out, units)

    async def start(self, timeout: float = 20.0) -> None:
        """Start the city and the towns together (a town retries its uplink until the city
        is up); wait for each, `timeout` s at most."""
        for h in [self.city, *self.towns.values()]:
            h.start()
        try:
            for h in [self.city, *self.towns.values()]:
                await wait_http(h.url, timeout)
        except BaseException:
            self.stop()  # none left behind
            raise

    def stop(self) -> None:
        for h in [*self.towns.values(), self.city]:
            h.stop()
