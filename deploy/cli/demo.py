"""`lindungi demo`: a week of Lindungi in a few minutes on an accelerated clock, narrated.

Works through the public HTTP doors only (the services `make demo` starts, at the console's
addresses): departures from several provinces to Korea, Japan, Taiwan, Saudi Arabia, the UAE
and Poland; incidents from those missions; desk officers claiming and working cases;
escalations firing; a remains repatriation reaching hand-over; an evacuation fanned out.

The week passes on the services' own clock, accelerated (shared/clock.py: LINDUNGI_CLOCK_SPEED
simulated seconds per second from LINDUNGI_CLOCK_EPOCH, the same settings as the services), so
the rules in force run as they are: a one-hour deadline passes in 1.25 s at 2880. Each scene
waits for its simulated hour of the week and the narration gives the simulated day and time
(Jakarta). The data stays, to explore in the console and the APIs.
Exit status: 0 done; 1 a step failed; 2 the clock is not accelerated (start with `make demo`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import typer
from rich.console import Console
from rich.table import Table

from services.console.settings import ConsoleSettings
from shared.auth import dev_token
from shared.clock import AcceleratedClock
from shared.settings import Settings

out = Console()

OPERATOR, ANI, BUDI, DEWI = "registry-operator", "officer-ani", "officer-budi", "supervisor-dewi"
CGK, DKI = "debarkation-cgk", "region-dki"


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_token(who)}"}


@dataclass(frozen=True)
class Worker:
    key: str
    name: str
    dob: str
    sex: str
    province: str
    country: str
    sector: str
    agency: str
    employer: str


def _nik(i: int, dob: str, sex: str, tag: int) -> str:
    y, m, d = dob.split("-")
    day = int(d) + (40 if sex == "F" else 0)
    return f"31{tag:02d}{i:02d}{day:02d}{m}{y[2:]}{i:04d}"


def workers(tag: int) -> list[Worker]:
    """The week's workers (tag makes their identities differ between runs)."""
    return [
        Worker(
            "welder",
            "Agus Prasetyo",
            "1991-04-12",
            "M",
            "Jawa Tengah",
            "KR",
            "welding",
            "p3mi-bina-karya",
            "Hanil Steel Co.",
        ),
        Worker(
            "osaka",
            "Sri Wahyuni",
            "1996-08-03",
            "F",
            "Jawa Timur",
            "JP",
            "caregiving",
            "p3mi-sakura-mandiri",
            "Osaka Care Home",
        ),
        Worker(
            "riyadh-kin",
            "Nur Aini",
            "1989-02-21",
            "F",
            "Nusa Tenggara Barat",
            "SA",
            "domestic_work",
            "p3mi-amanah",
            "Al Faisal household",
        ),
        Worker(
            "jeddah",
            "Rahmat Hidayat",
            "1985-11-30",
            "M",
            "DKI Jakarta",
            "SA",
            "construction",
            "p3mi-amanah",
            "Red Sea Builders",
        ),
        Worker(
            "crew-1",
            "Joko Susilo",
            "1993-06-01",
            "M",
            "Jawa Tengah",
            "TW",
            "fishing_seafaring",
            "p3mi-samudra",
            "FV Kaohsiung 88",
        ),
        Worker(
            "crew-2",
            "Bambang Riyadi",
            "1995-01-17",
            "M",
            "Jawa Tengah",
            "TW",
            "fishing_seafaring",
            "p3mi-samudra",
            "FV Kaohsiung 88",
        ),
        Worker(
            "crew-3",
            "Eko Saputra",
            "1997-09-09",
            "M",
            "Jawa Barat",
            "TW",
            "fishing_seafaring",
            "p3mi-samudra",
            "FV Kaohsiung 88",
        ),
        Worker(
            "pl-1",
            "Dedi Kurniawan",
            "1990-03-05",
            "M",
            "Jawa Barat",
            "PL",
            "welding",
            "p3mi-eurojaya",
            "Gdansk Yards",
        ),
        Worker(
            "pl-2",
            "Hendra Wijaya",
            "1992-12-24",
            "M",
            "Jawa Barat",
            "PL",
            "welding",
            "p3mi-eurojaya",
            "Gdansk Yards",
        ),
        Worker(
            "pl-3",
            "Yusuf Maulana",
            "1994-07-14",
            "M",
            "Lampung",
            "PL",
            "construction",
            "p3mi-eurojaya",
            "Krakow Build",
        ),
        Worker(
            "ae-1",
            "Lestari Handayani",
            "1993-05-19",
            "F",
            "Nusa Tenggara Barat",
            "AE",
            "domestic_work",
            "p3mi-amanah",
            "Abu Dhabi household",
        ),
        Worker(
            "ae-2",
            "Wulan Sari",
            "1998-10-02",
            "F",
            "Nusa Tenggara Barat",
            "AE",
            "hospitality",
            "p3mi-amanah",
            "Corniche Hotel",
        ),
    ]


# When each scene happens: simulated hours after the demo starts (a week is 168).
SCENES = {
    "departures": 0,
    "ulsan": 20,
    "osaka": 22,
    "tokyo": 26,
    "riyadh": 44,
    "jeddah": 47,
    "taipei": 68,
    "warsaw": 71,
    "death_certificate_and_documents": 74,
    "cargo_booked": 82,
    "arrived_cargo_terminal": 98,
    "transported_home": 101,
    "handed_over": 104,
    "evacuation": 122,
    "end": 144,
}
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


class Demo:
    """The week, on the services' accelerated clock.

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
        r = await self.http.request(method, f"{self.urls[service]}{path}", headers=auth(who), **kw)
        if r.status_code not in ok:
            raise RuntimeError(f"{service} {method} {path}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def narrate(self, text: str) -> None:
        """A line of the timeline, at the simulated time now in Jakarta."""
        self.say(f"{self.clock.now().astimezone(JAKARTA):%a %d %b %H:%M} WIB  {text}")

    async def until(self, what: str, check: Callable[[], Any]) -> Any:
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

    # ------------------------------------------------------------ the week

    async def run(self) -> Summary:
        try:
            self.narrate(
                f"the clock runs {self.clock.speed:g} times fast: an hour in "
                f"{self.clock.wall_seconds(timedelta(hours=1)):g} s, with the rules in force as they are"
            )
            await self.departures()
            await self.incidents_arrive()
            await self.escalations_fire()
            await self.remains_home()
            await self.evacuation()
            await self.at("end")
            await self.until("a deadline to pass unmet", self.any_missed)
            self.narrate("the week is over; the data stays, to explore in the console and the APIs")
            await self.summarise()
            return self.summary
        finally:
            await self.http.aclose()

    async def any_missed(self) -> bool:
        await self.deadlines()
        return bool(self.missed)

    async def departures(self) -> None:
        await self.at("departures")

        async def register(i: int, w: Worker) -> None:
            body = {
                "full_name": w.name,
                "date_of_birth": w.dob,
                "sex": w.sex,
                "nik": _nik(i, w.dob, w.sex, self.tag),
                "home_province": w.province,
                "home_regency": "Kota",
                "destination_country": w.country,
                "sector": w.sector,
                "skill_level": "middle",
                "scheme": "agency",
                "agency_id": w.agency,
                "employer_name": w.employer,
                "departure_date": "2026-03-02",
                "status": "departed",
            }
            r = await self.http.post(
                f"{self.urls['registry']}/v1/departures", json=body, headers=auth(OPERATOR)
            )
            if r.status_code not in (201, 409):  # 409: this worker departed in an earlier demo run
                raise RuntimeError(f"registry: HTTP {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(register(i, w) for i, w in enumerate(workers(self.tag))))
        countries = sorted({w.country for w in workers(self.tag)})
        self.narrate(f"{len(workers(self.tag))} departures registered, to {', '.join(countries)}")

    def report(
        self, w: Worker, mission: str, category: str, severity: str, place: str, text: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "mission_id": mission,
            "country": w.country,
            "place": place,
            "category": category,
            "severity": severity,
            "narrative": text,
            "occurred_at": (self.clock.now() - timedelta(hours=2)).isoformat(),
            "worker": {"full_name": w.name, "date_of_birth": w.dob},
            **extra,
        }

    async def incident(self, key: str, mission: str, body: dict[str, Any]) -> str:
        r = await self.call("intake", "POST", "/v1/incidents", mission, json=body)
        self.incidents.setdefault(key, r["incident_id"])
        return str(r["incident_id"])

    async def incidents_arrive(self) -> None:
        w = {x.key: x for x in workers(self.tag)}
        await self.at("ulsan")
        await self.incident(
            "welder",
            "kbri-seoul",
            self.report(
                w["welder"], "kbri-seoul", "injury", "high", "Ulsan", "Burned at the shipyard; in hospital."
            ),
        )
        self.narrate("KBRI Seoul: a welder injured at a shipyard in Ulsan")
        await self.work(ANI, "welder", "Ani")
        await self.at("osaka")
        await self.incident(
            "osaka",
            "kjri-osaka",
            self.report(w["osaka"], "kjri-osaka", "unpaid_wages", "medium", "Osaka", "Three months unpaid."),
        )
        self.narrate("KJRI Osaka: three months of unpaid wages")
        await self.work(BUDI, "osaka", "Budi")
        await self.at("tokyo")
        await self.incident(
            "osaka-2",
            "kbri-tokyo",
            self.report(
                w["osaka"],
                "kbri-tokyo",
                "unpaid_wages",
                "medium",
                "Osaka",
                "Family called Tokyo: wages unpaid.",
            ),
        )
        self.narrate("KBRI Tokyo reports the same unpaid wages in Osaka: it joins the case")
        kin = w["riyadh-kin"]
        body = self.report(
            kin, "kbri-riyadh", "physical_abuse", "high", "Riyadh", "Domestic worker ran away to the embassy."
        )
        body["worker"] = {"full_name": "Siti Maemunah", "date_of_birth": "1999-01-30"}  # never registered
        await self.at("riyadh")
        await self.incident("riyadh", "kbri-riyadh", body)
        self.narrate("KBRI Riyadh: a domestic worker with no departure record (non-procedural)")
        await self.at("jeddah")
        await self.incident(
            "jeddah",
            "kjri-jeddah",
            self.report(
                w["jeddah"],
                "kjri-jeddah",
                "death",
                "critical",
                "Jeddah",
                "Died in a fall at a construction site.",
            ),
        )
        self.narrate("KJRI Jeddah: a worker died at a construction site")
        await self.at("taipei")
        for k in ("crew-1", "crew-2", "crew-3"):
            await self.incident(
                k,
                "kdei-taipei",
                self.report(
                    w[k], "kdei-taipei", "trafficking", "critical", "Kaohsiung", "Crew held on the vessel."
                ),
            )
        self.narrate("KDEI Taipei: a fishing crew of three, trafficking indicators")
        await self.at("warsaw")
        for k in ("pl-1", "pl-2", "pl-3"):
            await self.incident(
                k,
                "kbri-warsaw",
                self.report(
                    w[k], "kbri-warsaw", "contract_mismatch", "medium", "Gdansk", "Contract not as promised."
                ),
            )
        self.narrate("KBRI Warsaw: three incidents, one agency (p3mi-eurojaya)")

        async def opened() -> list[str] | None:
            ids = []
            for iid in self.incidents.values():
                got = await self.call("casework", "GET", "/v1/cases", DEWI, params={"incident_id": iid})
                if not got:
                    return None
                ids.append(got[0]["case_id"])
            return sorted(set(ids))

        self.summary.case_ids = await self.until("every incident in a case", opened)
        self.narrate(f"{len(self.incidents)} reports are {len(self.summary.case_ids)} cases on the desk")

    async def work(self, officer: str, key: str, name: str) -> None:
        """An officer claims and acknowledges the case as soon as it is on the desk."""
        cid = await self.until(f"the {key} case", lambda: self.case_of(key))
        for _ in range(5):
            await self.call("casework", "POST", f"/v1/cases/{cid}/claim", officer, json={})
            r = await self.http.post(
                f"{self.urls['casework']}/v1/cases/{cid}/acknowledge", json={}, headers=auth(officer)
            )
            # A claim's lease is 30 simulated minutes: on a fast clock that is a second or less,
            # and a slow machine can lose it between the two calls. The supervisor returns it to
            # the queue and the officer claims it again, as the desk would.
            if r.status_code == 409 and "lease" in r.text:
                await self.call("casework", "POST", "/v1/queues/release-expired", DEWI, json={})
                continue
            if r.status_code != 200:
                raise RuntimeError(f"casework acknowledge: HTTP {r.status_code} {r.text[:300]}")
            break
        else:
            raise RuntimeError(f"the {key} case's claim expired five times before its acknowledgement")
        self.narrate(f"officer {name} claims and acknowledges it in time")

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

    async def escalations_fire(self) -> None:
        crew = await self.case_of("crew-1")
        self.narrate("nobody acknowledges the critical cases: their deadlines pass")

        async def escalated() -> bool:
            case = await self.call("casework", "GET", f"/v1/cases/{crew}", DEWI)
            return int(case.get("escalation_level") or 0) >= 3

        await self.until("the trafficking case escalated", escalated)
        self.narrate("the trafficking case is at level 3 and referred to the anti-trafficking task force")

        for agency, who in (("p3mi-eurojaya", "the Polish agency"), ("p3mi-samudra", "the crew's agency")):

            async def flagged(agency: str = agency) -> bool:
                got = await self.call("registry", "GET", f"/v1/agencies/{agency}", DEWI, ok=(200, 404))
                return bool(got and got.get("flags"))

            await self.until(f"{who} flagged", flagged)
            self.narrate(f"{agency} ({who}) flagged: three incidents within 30 days")

    async def remains_home(self) -> None:
        case = await self.case_of("jeddah")

        async def started() -> Any:
            got = await self.call("repatriation", "GET", "/v1/repatriations", DEWI, params={"case_id": case})
            return got[0] if got else None

        rid = (await self.until("the remains repatriation", started))["repatriation_id"]
        self.narrate("the death opened a remains repatriation (rule death-remains)")
        arrival = (self.start + timedelta(hours=SCENES["arrived_cargo_terminal"])).isoformat()
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("death_certificate_and_documents", "kjri-jeddah", {"evidence": ["DC-JED-1"]}),
            (
                "cargo_booked",
                "kjri-jeddah",
                {
                    "evidence": ["AWB-1"],
                    "data": {"flight": "SV816", "arrival_at": arrival, "debarkation_point": "CGK"},
                },
            ),
            ("arrived_cargo_terminal", CGK, {"evidence": ["CGK-CARGO-1"]}),
            ("transported_home", DKI, {"evidence": ["AMB-DKI-1"]}),
            (
                "handed_over",
                DKI,
                {"evidence": ["BAST-1"], "data": {"received_by": "family", "witness": "Kepala Desa"}},
            ),
        ]
        for name, who, body in steps:
            await self.at(name)
            doc = await self.call("repatriation", "GET", f"/v1/repatriations/{rid}", DEWI)
            if doc.get("current_step") != name:
                continue  # skipped (no hub) or done
            await self.call(
                "repatriation", "POST", f"/v1/repatriations/{rid}/steps/{name}/complete", who, json=body
            )
            self.narrate(f"remains repatriation: {name.replace('_', ' ')}")
        doc = await self.call("repatriation", "GET", f"/v1/repatriations/{rid}", DEWI)
        if doc["status"] != "completed":
            raise RuntimeError(f"the remains repatriation is {doc['status']} at {doc.get('current_step')}")
        self.narrate("handed over to the family in Jakarta")

    async def evacuation(self) -> None:
        await self.at("evacuation")
        r = await self.call(
            "repatriation",
            "POST",
            "/v1/evacuations",
            "kbri-abu-dhabi",
            json={
                "country": "AE",
                "reason": "demo: unrest in Abu Dhabi",
                "request_id": f"demo-{uuid.uuid4().hex[:8]}",
            },
        )
        self.summary.evacuees = int((r.get("fanout") or {}).get("count") or 0)
        self.narrate(
            f"KBRI Abu Dhabi starts an evacuation: {self.summary.evacuees} registered workers listed",
        )

    async def summarise(self) -> None:
        cases = [await self.call("casework", "GET", f"/v1/cases/{c}", DEWI) for c in self.summary.case_ids]
        self.summary.cases_by_status = dict(Counter(c["status"] for c in cases))
        for cid in self.summary.case_ids:
            for chain in await self.call("escalation", "GET", "/v1/chains", DEWI, params={"case_id": cid}):
                if chain["slot"] > 0:
                    self.summary.deadlines_missed += 1
                elif chain["state"] == "cancelled":
                    self.summary.deadlines_met += 1
        for agency in (
            "p3mi-eurojaya",
            "p3mi-samudra",
            "p3mi-amanah",
            "p3mi-bina-karya",
            "p3mi-sakura-mandiri",
        ):
            got = await self.call("registry", "GET", f"/v1/agencies/{agency}", DEWI, ok=(200, 404))
            if got and got.get("flags"):
                self.summary.agencies_flagged.append(agency)
        reps = await self.call(
            "repatriation", "GET", "/v1/repatriations", DEWI, params={"status": "completed"}, ok=(200, 422)
        )
        self.summary.workers_home = len(reps or [])


def show(s: Summary) -> None:
    t = Table("", "", title="the week, summed up")
    for status, n in sorted(s.cases_by_status.items()):
        t.add_row(f"cases {status}", str(n))
    t.add_row("deadlines met", str(s.deadlines_met))
    t.add_row("deadlines missed (escalated)", str(s.deadlines_missed))
    t.add_row("agencies flagged", ", ".join(s.agencies_flagged) or "-")
    t.add_row("workers (or remains) home", str(s.workers_home))
    t.add_row("workers listed for evacuation", str(s.evacuees))
    out.print(t)


def demo(
    timeout: float = typer.Option(120, help="seconds to wait for any one thing to happen"),
    pace: bool = typer.Option(True, help="wait for each scene's simulated hour (--no-pace: back to back)"),
) -> None:
    """A week of Lindungi in a few minutes on the services' accelerated clock, narrated, with a summary."""
    clock = Settings().clock()
    if not isinstance(clock, AcceleratedClock):
        out.print(
            "[red]the demo runs on an accelerated clock: `make demo` starts the services on one and "
            "runs it; by hand, give LINDUNGI_CLOCK_SPEED and LINDUNGI_CLOCK_EPOCH as the services "
            "were started with[/red]"
        )
        raise typer.Exit(2)
    runner = Demo(ConsoleSettings().service_urls(), clock=clock, say=out.print, timeout=timeout, pace=pace)
    try:
        summary = asyncio.run(runner.run())
    except (RuntimeError, httpx.HTTPError) as exc:
        out.print(f"[red]the demo stopped: {exc}[/red]")
        raise typer.Exit(1) from None
    show(summary)
