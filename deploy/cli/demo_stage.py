"""The demo's plumbing: HTTP to the services, the accelerated clock, waits and narration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from deploy.cli.demo_cast import DEWI, SCENES, auth
from shared.clock import AcceleratedClock

JAKARTA = ZoneInfo("Asia/Jakarta")


@dataclass
class Summary:
    cases_by_status: dict[str, int] = field(default_factory=dict)
    deadlines_met: int = 0
    deadlines_missed: int = 0
    agencies_flagged: list[str] = field(default_factory=list)
    workers_home: int = 0
    evacuees: int = 0
    case_ids: list[str] = field(default_factory=list)


class Stage:
    """The demo's plumbing: HTTP calls to the services as a given user, narration at the
    simulated time, waits on conditions, and the scenes' simulated hours on the accelerated clock.

    pace=False runs the scenes back to back (a shortened week, for the test): simulated time
    then passes only while the services work and the demo waits for them.
    """

    def __init__(
        self,
        urls: dict[str, str],
        *,
        clock: AcceleratedClock,
        say: Callable[[str], None],
        timeout: float = 60,
        pace: bool = True,
    ) -> None:
        self.urls = urls
        self.clock = clock
        self.say = say
        self.timeout = timeout
        self.pace = pace
        self.http = httpx.AsyncClient(timeout=30)
        self.tag = int(time.time()) % 90 + 10
        self.start = clock.now()
        self.incidents: dict[str, str] = {}  # worker key -> incident id
        self.cases: dict[str, str] = {}  # worker key -> case id
        self.missed: set[str] = set()  # chains whose deadline passed, narrated once
        self.summary = Summary()

    async def call(
        self, service: str, method: str, path: str, who: str, ok: tuple[int, ...] = (200, 201, 202), **kw: Any
    ) -> Any:
        """`method path` on a service as `who`; any status outside `ok` stops the demo."""
        answer = await self.http.request(method, f"{self.urls[service]}{path}", headers=auth(who), **kw)
        if answer.status_code not in ok:
            raise RuntimeError(f"{service} {method} {path}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    def narrate(self, text: str) -> None:
        """A line of the timeline, at the simulated time now in Jakarta."""
        self.say(f"{self.clock.now().astimezone(JAKARTA):%a %d %b %H:%M} WIB  {text}")

    async def until(self, what: str, check: Callable[[], Any]) -> Any:
        """Poll `check` until it gives something truthy (returned), or stop after the timeout."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.3)
        raise RuntimeError(f"waited {self.timeout:.0f} s for {what}")

    async def at(self, scene: str) -> None:
        """Wait for the scene's simulated hour (not when unpaced), narrating deadlines that pass."""
        if not self.pace:
            return
        due = self.start + timedelta(hours=SCENES[scene])
        while self.clock.now() < due:
            await self.deadlines()
            await asyncio.sleep(min(1.0, max(self.clock.wall_seconds(due - self.clock.now()), 0.0)))
        await self.deadlines()

    async def deadlines(self) -> None:
        """Narrate each deadline that passed since the last look (its chain moved past a slot)."""
        for key in list(self.incidents):
            cid = await self.case_of(key)
            if cid is None:
                continue
            for chain in await self.call("escalation", "GET", "/v1/chains", DEWI, params={"case_id": cid}):
                if chain["slot"] > 0 and chain["chain_id"] not in self.missed:
                    self.missed.add(chain["chain_id"])
                    fired = [
                        str(f["fired_at"])
                        for f in chain.get("firings", [])
                        if f.get("outcome") == "fired" and f.get("fired_at")
                    ]
                    when = min(fired, key=datetime.fromisoformat) if fired else None
                    at = (
                        f" at {datetime.fromisoformat(when).astimezone(JAKARTA):%a %H:%M}"
                        if isinstance(when, str)
                        else ""
                    )
                    self.narrate(f"deadline missed on the {key} case: {chain['rule_id']} escalated it{at}")

    async def any_missed(self) -> bool:
        await self.deadlines()
        return bool(self.missed)

    async def case_of(self, key: str) -> str | None:
        """The case an incident joined (kept once known: a case id never changes)."""
        if key not in self.cases:
            got = await self.call(
                "casework", "GET", "/v1/cases", DEWI, params={"incident_id": self.incidents[key]}
            )
            if not got:
                return None
            self.cases[key] = str(got[0]["case_id"])
        return self.cases[key]
