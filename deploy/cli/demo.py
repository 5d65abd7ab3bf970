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
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from deploy.cli.demo_cast import ANI, BUDI, CGK, DEWI, DKI, OPERATOR, SCENES, WORKERS, Worker, auth, nik_for
from deploy.cli.demo_stage import Stage, Summary
from services.console.settings import ConsoleSettings
from shared.clock import AcceleratedClock
from shared.settings import Settings

out = Console()


class Demo(Stage):
    """The week, on the services' accelerated clock: the scenes, in order (see Stage for pace)."""

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

    async def departures(self) -> None:
        await self.at("departures")

        async def register(i: int, worker: Worker) -> None:
            body = {
                "full_name": worker.name,
                "date_of_birth": worker.dob,
                "sex": worker.sex,
                "nik": nik_for(i, worker.dob, worker.sex, self.tag),
                "home_province": worker.province,
                "home_regency": "Kota",
                "destination_country": worker.country,
                "sector": worker.sector,
                "skill_level": "middle",
                "scheme": "agency",
                "agency_id": worker.agency,
                "employer_name": worker.employer,
                "departure_date": "2026-03-02",
                "status": "departed",
            }
            answer = await self.http.post(
                f"{self.urls['registry']}/v1/departures", json=body, headers=auth(OPERATOR)
            )
            if answer.status_code not in (201, 409):  # 409: this worker departed in an earlier demo run
                raise RuntimeError(f"registry: HTTP {answer.status_code} {answer.text[:200]}")

        await asyncio.gather(*(register(i, worker) for i, worker in enumerate(WORKERS)))
        countries = sorted({worker.country for worker in WORKERS})
        self.narrate(f"{len(WORKERS)} departures registered, to {', '.join(countries)}")

    def report(
        self, worker: Worker, mission: str, category: str, severity: str, place: str, text: str, **extra: Any
    ) -> dict[str, Any]:
        """A mission's incident report about a worker, occurred two simulated hours ago."""
        return {
            "mission_id": mission,
            "country": worker.country,
            "place": place,
            "category": category,
            "severity": severity,
            "narrative": text,
            "occurred_at": (self.clock.now() - timedelta(hours=2)).isoformat(),
            "worker": {"full_name": worker.name, "date_of_birth": worker.dob},
            **extra,
        }

    async def incident(self, key: str, mission: str, body: dict[str, Any]) -> str:
        """Post a report; the first incident about `key` is the one the demo follows."""
        accepted = await self.call("intake", "POST", "/v1/incidents", mission, json=body)
        self.incidents.setdefault(key, accepted["incident_id"])
        return str(accepted["incident_id"])

    async def matched(self, key: str) -> bool:
        """Whether the case of `key` knows its registered worker."""
        case = await self.call("casework", "GET", f"/v1/cases/{await self.case_of(key)}", DEWI)
        return bool(case.get("worker_id"))

    async def incidents_arrive(self) -> None:
        """The missions' reports over four days, then every report in a case on the desk."""
        await self.reports_from_east_asia()
        await self.reports_from_saudi_arabia()
        await self.group_reports()
        await self.all_in_cases()

    async def reports_from_east_asia(self) -> None:
        """Seoul and Osaka report; officers take both cases in time; Tokyo repeats Osaka's."""
        cast = {worker.key: worker for worker in WORKERS}
        await self.at("ulsan")
        await self.incident(
            "welder",
            "kbri-seoul",
            self.report(
                cast["welder"],
                "kbri-seoul",
                "injury",
                "high",
                "Ulsan",
                "Burned at the shipyard; in hospital.",
            ),
        )
        self.narrate("KBRI Seoul: a welder injured at a shipyard in Ulsan")
        await self.work(ANI, "welder", "Ani")
        await self.at("osaka")
        await self.incident(
            "osaka",
            "kjri-osaka",
            self.report(
                cast["osaka"], "kjri-osaka", "unpaid_wages", "medium", "Osaka", "Three months unpaid."
            ),
        )
        self.narrate("KJRI Osaka: three months of unpaid wages")
        await self.work(BUDI, "osaka", "Budi")
        # Tokyo's report joins the case of the same registered worker: the case must know its
        # worker first (intake matches a report once registry's departure has reached it, late
        # if the report came first; a busy machine can take seconds for that)
        await self.until("the Osaka case matched to its worker's departure", lambda: self.matched("osaka"))
        await self.at("tokyo")
        await self.incident(
            "osaka-2",
            "kbri-tokyo",
            self.report(
                cast["osaka"],
                "kbri-tokyo",
                "unpaid_wages",
                "medium",
                "Osaka",
                "Family called Tokyo: wages unpaid.",
            ),
        )
        self.narrate("KBRI Tokyo reports the same unpaid wages in Osaka: it joins the case")

    async def reports_from_saudi_arabia(self) -> None:
        """Riyadh reports a worker with no departure record; Jeddah reports a death."""
        cast = {worker.key: worker for worker in WORKERS}
        kin = cast["riyadh-kin"]
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
                cast["jeddah"],
                "kjri-jeddah",
                "death",
                "critical",
                "Jeddah",
                "Died in a fall at a construction site.",
            ),
        )
        self.narrate("KJRI Jeddah: a worker died at a construction site")

    async def group_reports(self) -> None:
        """A fishing crew from Taipei, then three workers of one agency from Warsaw."""
        cast = {worker.key: worker for worker in WORKERS}
        await self.at("taipei")
        for key in ("crew-1", "crew-2", "crew-3"):
            await self.incident(
                key,
                "kdei-taipei",
                self.report(
                    cast[key],
                    "kdei-taipei",
                    "trafficking",
                    "critical",
                    "Kaohsiung",
                    "Crew held on the vessel.",
                ),
            )
        self.narrate("KDEI Taipei: a fishing crew of three, trafficking indicators")
        await self.at("warsaw")
        for key in ("pl-1", "pl-2", "pl-3"):
            await self.incident(
                key,
                "kbri-warsaw",
                self.report(
                    cast[key],
                    "kbri-warsaw",
                    "contract_mismatch",
                    "medium",
                    "Gdansk",
                    "Contract not as promised.",
                ),
            )
        self.narrate("KBRI Warsaw: three incidents, one agency (p3mi-eurojaya)")

    async def all_in_cases(self) -> None:
        """Wait until every incident is in a case (repeats join one), and note the case ids."""

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
            ack = await self.http.post(
                f"{self.urls['casework']}/v1/cases/{cid}/acknowledge", json={}, headers=auth(officer)
            )
            # A claim's lease is 30 simulated minutes: on a fast clock that is a second or less,
            # and a slow machine can lose it between the two calls. The supervisor returns it to
            # the queue and the officer claims it again, as the desk would.
            if ack.status_code == 409 and "lease" in ack.text:
                await self.call("casework", "POST", "/v1/queues/release-expired", DEWI, json={})
                continue
            if ack.status_code != 200:
                raise RuntimeError(f"casework acknowledge: HTTP {ack.status_code} {ack.text[:300]}")
            break
        else:
            raise RuntimeError(f"the {key} case's claim expired five times before its acknowledgement")
        self.narrate(f"officer {name} claims and acknowledges it in time")

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

        async def home_known() -> bool:
            # The rule's request can outrun the departure on its way to repatriation: the
            # workflow learns the worker's home when it arrives, and only then may DKI act on it.
            doc = await self.call("repatriation", "GET", f"/v1/repatriations/{rid}", DEWI)
            return bool(doc.get("home_province"))

        await self.until("the remains repatriation to know the worker's home", home_known)
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
        started = await self.call(
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
        self.summary.evacuees = int((started.get("fanout") or {}).get("count") or 0)
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


def show(summary: Summary) -> None:
    """The week's summary as a table."""
    table = Table("", "", title="the week, summed up")
    for status, count in sorted(summary.cases_by_status.items()):
        table.add_row(f"cases {status}", str(count))
    table.add_row("deadlines met", str(summary.deadlines_met))
    table.add_row("deadlines missed (escalated)", str(summary.deadlines_missed))
    table.add_row("agencies flagged", ", ".join(summary.agencies_flagged) or "-")
    table.add_row("workers (or remains) home", str(summary.workers_home))
    table.add_row("workers listed for evacuation", str(summary.evacuees))
    out.print(table)


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
