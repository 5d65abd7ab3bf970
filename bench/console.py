"""The console's queue and case pages with N cases stored, against casework's API alone for the same reads.

`python -m bench.console [N] [ROUNDS] [QUEUE_ROUNDS]` (or `BENCH_CONSOLE_CASES` (10,000),
`BENCH_CONSOLE_ROUNDS` (30), `BENCH_CONSOLE_QUEUE_ROUNDS` (5), `BENCH_CONSOLE_QUEUE_WARMUP` (1),
`BENCH_CONSOLE_WAITING` (10: percent of the cases waiting in a queue, 10 more in progress, the rest closed),
`BENCH_CONSOLE_LIVE_ROUNDS` (5: reports posted to time how soon the desk's queue page shows them),
`BENCH_CONSOLE_LIVE_PROCESSES` (1: the live rounds run against the services and the console started
as separate processes, as `make run` starts them; 0: in this process, beside the server-time rounds),
`BENCH_CONSOLE_TIMEOUT` (900 s a read); Kafka and MongoDB from the environment, like the
services). Starts the five services and the console in this process, each on a free loopback
port (the console calls the services over HTTP, as in `make run`), in a fresh namespace. Stores
N cases in casework's database with bulk inserts of the very documents casework's incident
handler builds (`opening.protection_case`), at rest (outbox already published), and fills the
waiting cases' read model from them as casework's start does (`handlers.fill_waiting`).
Then, signed in as a desk officer, it reads in turn (the queue page QUEUE_ROUNDS times, the case
page ROUNDS times):

- the console's queue page `/desk?queue=<the largest queue>`, which reads casework's
  `GET /v1/queues` and `GET /v1/queues/{queue}/cases?limit=100` at once, each round twice: just
  after the queue's change stamp moved (as any case event in the queue moves it, so casework
  recomputes that queue's answers once) and again with nothing changed (answered from casework's
  cache); casework's API alone the same two ways;
- the console's case page `/cases/{id}` (a different case each round), which reads casework's
  `GET /v1/cases/{id}` then, at once, repatriation, escalation and intake for the same case;
- casework's API alone for the same casework reads.

Server time is measured inside each server (an ASGI wrapper from the first byte of the request
to the last byte of the answer), so the client's own cost is not in it. Prints p50/p99 and the
ratio console / API. Cleans up after itself. Nothing passes or fails on speed.

The live rounds time what a desk officer sees: a mission's POST until the queue page shows the
case. By default they run against separate processes (one per service and the console, started
by `make run`'s Supervisor on the same namespace, after the in-process apps have stopped), so
that the services do not share one event loop and one core as they do for the server-time rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deploy.local.run import ROOT, Supervisor, free_port
from deploy.local.run import SERVICES as PROCESS_PORTS
from services.casework import changes, domain, handlers, opening, store
from services.casework.app import create_app as casework_app
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation.app import create_app as repatriation_app
from shared.events.intake import IncidentAccepted
from shared.namespace import drop_namespace
from shared.outbox import OUTBOX, PENDING
from shared.service import Runtime
from shared.settings import Settings

N = int(os.environ.get("BENCH_CONSOLE_CASES", "10000"))
ROUNDS = int(os.environ.get("BENCH_CONSOLE_ROUNDS", "30"))
# The queue page's reads filter on fields other than _id: on a database that scans for those
# (FerretDB on SQLite) each takes seconds at 10,000 cases, so it gets fewer rounds.
QUEUE_ROUNDS = int(os.environ.get("BENCH_CONSOLE_QUEUE_ROUNDS", "5"))
WARMUP = 3
QUEUE_WARMUP = int(os.environ.get("BENCH_CONSOLE_QUEUE_WARMUP", "1"))
# Percent of the stored cases still waiting in a queue; 10 more are being worked, the rest closed.
# 90 (`BENCH_CONSOLE_WAITING=90`) is a desk with a backlog of nine cases in ten.
WAITING_PCT = int(os.environ.get("BENCH_CONSOLE_WAITING", "10"))
LIVE_ROUNDS = int(os.environ.get("BENCH_CONSOLE_LIVE_ROUNDS", "5"))
LIVE_PROCESSES = os.environ.get("BENCH_CONSOLE_LIVE_PROCESSES", "1") != "0"
KEYS = (
    "queue_page",
    "queue_own",
    "queues_api",
    "queue_cases_api",
    "queue_api",
    "queue_page_kept",
    "queue_api_kept",
    "case_page",
    "case_own",
    "case_api",
)
TIMEOUT = float(os.environ.get("BENCH_CONSOLE_TIMEOUT", "900"))  # seconds a read may take
BATCH = 1000
OFFICER = "officer-ani"
# Countries over four regions; one category in ten trafficking and one death, the rest general:
# the east_asia-general queue holds about 40% of the cases.
COUNTRIES = [("KR", "kbri-seoul"), ("TW", "kdei-taipei"), ("HK", "kjri-hongkong"), ("MY", "kbri-kl")]
COUNTRIES += [("SA", "kjri-jeddah"), ("DE", "kbri-berlin")]
CATEGORIES = ["unpaid_wages"] * 4 + ["injury", "illness", "documents_withheld", "contract_mismatch"]
CATEGORIES += ["trafficking", "death"]
SEVERITIES = ["low", "medium", "high", "critical"]
SERVICES: dict[str, Callable[..., FastAPI]] = {
    "registry": registry_app,
    "intake": intake_app,
    "casework": casework_app,
    "escalation": escalation_app,
    "repatriation": repatriation_app,
}


class Timed:
    """An ASGI wrapper that keeps the server time of each HTTP request (first to last byte)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.samples: list[tuple[str, float, float]] = []  # path, start, end (perf_counter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.samples.append((scope["path"], t0, time.perf_counter()))

        await self.app(scope, receive, timed_send)


@contextlib.asynccontextmanager
async def _processes(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """The five services and the console as separate processes on the bench's namespace; their URLs."""
    ports = {name: free_port() for name in PROCESS_PORTS}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "LINDUNGI_LOG_LEVEL": "WARNING",
        "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LINDUNGI_MONGODB_URI": settings.mongodb_uri,
        **{f"LINDUNGI_CONSOLE_{name.upper()}_URL": url for name, url in urls.items() if name != "console"},
        "LINDUNGI_CONSOLE_SERVICE_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    sup = Supervisor(env, ports, logs=ROOT / ".cache" / "logs" / "bench-console")
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=5) as c:
            for name, url in urls.items():
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await c.get(f"{url}/readyz")).status_code == 200:
                            break
                    if time.monotonic() > deadline or sup.procs[name].poll() is not None:
                        raise RuntimeError(f"{name} did not start: see {sup.logs / (name + '.log')}")
                    await asyncio.sleep(0.3)
        _progress("services started as processes for the live rounds")
        yield urls
    finally:
        sup.stop()


@contextlib.asynccontextmanager
async def _serving(apps: dict[str, ASGIApp]) -> AsyncIterator[dict[str, str]]:
    """Serve each app on a free loopback port in this loop; their base URLs."""
    servers: dict[str, uvicorn.Server] = {}
    tasks = []
    urls = {}
    for name, app in apps.items():
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5)
        )
        servers[name] = server
        urls[name] = f"http://127.0.0.1:{port}"
        tasks.append(asyncio.create_task(server.serve()))
    try:
        deadline = time.monotonic() + 120
        while not all(s.started for s in servers.values()):
            if any(t.done() for t in tasks) or time.monotonic() > deadline:
                raise RuntimeError(f"did not start: {[n for n, s in servers.items() if not s.started]}")
            await asyncio.sleep(0.1)
        yield urls
    finally:
        for s in servers.values():
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


def _incident(i: int, rt: Runtime) -> IncidentAccepted:
    country, mission = COUNTRIES[i % len(COUNTRIES)]
    now = rt.clock.now()
    return IncidentAccepted(
        incident_id=f"bench-incident-{i:06d}",
        mission_id=mission,
        country=country,
        category=CATEGORIES[(i // len(COUNTRIES)) % len(CATEGORIES)],  # type: ignore[arg-type]
        severity=SEVERITIES[(i // 7) % len(SEVERITIES)],  # type: ignore[arg-type]
        occurred_at=now - timedelta(days=1),
        reported_at=now,
        worker_key=f"bench-worker-{i:06d}",  # a worker each: every incident opens its own case
        worker_name=f"Pekerja {i:05d}",
    )


def case_document(rt: Runtime, i: int) -> dict[str, Any]:
    """A case exactly as casework's incident handler stores it, once its outbox is published."""
    incident = _incident(i, rt)
    case_id = changes.case_id_for(incident.incident_id)
    doc = opening.protection_case(
        rt,
        case_id=case_id,
        event_id=f"bench-event-{i:06d}",
        incident=incident,
        group=domain.is_group(incident.category, incident.people_affected),
        keys=domain.placement_key(
            worker_key=incident.worker_key,
            category=incident.category,
            country=incident.country,
            people_affected=incident.people_affected,
            case_id=case_id,
        ),
    )
    doc[OUTBOX], doc[PENDING] = [], False  # what the relay leaves after publishing
    share = i % 100
    if share >= WAITING_PCT + 10:  # finished: most of a year's cases are
        doc.update(status="closed", open_key=domain.closed_key(doc["_id"]), resolution="bench: resolved")
    elif share >= WAITING_PCT:  # worked by an officer
        doc.update(status="in_progress", assignee="officer-budi")
    return doc


async def store_cases(rt: Runtime, n: int) -> tuple[list[str], float]:
    """Bulk-insert n cases into casework's collection; their ids and the seconds it took."""
    ids = []
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        docs = [case_document(rt, i) for i in range(start, min(n, start + BATCH))]
        await rt.db[store.CASES].insert_many(docs, ordered=False)
        ids += [d["_id"] for d in docs]
    return ids, time.perf_counter() - t0


def _progress(what: str) -> None:
    print(f"  ... {what}", file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _server_time(client: httpx.AsyncClient, timed: Timed, path: str, **kw: Any) -> tuple[float, str]:
    """GET path, check the answer; the server time the wrapper measured for it, and the body."""
    before = len(timed.samples)
    r = await client.get(path, **kw)
    if r.status_code != 200 or "is not answering" in r.text:
        raise RuntimeError(f"GET {path}: HTTP {r.status_code} {r.text[:300]}")
    _, start, end = timed.samples[before]
    return end - start, r.text


def _waited(timed: dict[str, Timed], page: Timed) -> float:
    """How long the console's last page waited on the services: the union of the server times
    of the calls made while it was being served (concurrent calls count once)."""
    _, a, b = page.samples[-1]
    spans = sorted(
        (s, e) for name, t in timed.items() if t is not page for _, s, e in t.samples if s >= a and e <= b
    )
    total, reach = 0.0, a
    for s, e in spans:
        if e > reach:
            total += e - max(s, reach)
            reach = e
    return total


async def bench(n: int = N, rounds: int = ROUNDS, queue_rounds: int = QUEUE_ROUNDS) -> dict[str, Any]:
    """Store n cases, read the pages and the API behind them; the figures."""
    settings = Settings(namespace=f"bench{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    apps = {name: make(settings) for name, make in SERVICES.items()}
    timed = {name: Timed(app) for name, app in apps.items()}
    rt: Runtime = apps["casework"].state.runtime
    try:
        async with _serving(dict(timed)) as urls:
            ids, insert_s = await store_cases(rt, n)
            _progress(f"stored {n} cases in {insert_s:.1f} s")
            t0 = time.perf_counter()
            await handlers.fill_waiting(rt)  # what a start does with cases stored before the read model
            fill_s = time.perf_counter() - t0
            _progress(f"filled the waiting cases' read model in {fill_s:.1f} s")
            console_settings = ConsoleSettings(
                **{f"{name}_url": url for name, url in urls.items()},  # type: ignore[arg-type]
                service_timeout_seconds=TIMEOUT,  # measure a slow read, never cut it short
            )
            timed["console"] = Timed(console_app(console_settings))
            async with _serving({"console": timed["console"]}) as curls:
                got, queue = await measure(
                    urls["casework"],
                    curls["console"],
                    timed,
                    ids,
                    rt,
                    rounds=rounds,
                    queue_rounds=queue_rounds,
                )
                if not LIVE_PROCESSES:
                    got.update(await live_delay(urls, curls["console"], LIVE_ROUNDS))
        if LIVE_PROCESSES and LIVE_ROUNDS:
            async with _processes(settings) as purls:
                await live_delay(purls, purls["console"], 1)  # warm-up: consumer groups settle
                got.update(await live_delay(purls, purls["console"], LIVE_ROUNDS))
    finally:
        await drop_namespace(settings)
    return {
        "n": n,
        "rounds": rounds,
        "queue_rounds": queue_rounds,
        "insert_s": insert_s,
        "fill_s": fill_s,
        "queue": queue.get("id", "-"),
        "depth": queue.get("depth", 0),
        **{k: (_pct(v, 0.5), _pct(v, 0.99)) for k, v in got.items() if v},
    }


async def measure(
    casework_url: str,
    console_url: str,
    timed: dict[str, Timed],
    ids: list[str],
    rt: Runtime,
    *,
    rounds: int,
    queue_rounds: int,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Read each page and, right after, the casework reads behind it; the samples (ms) and the queue."""
    api_headers = {"authorization": f"Bearer dev-{OFFICER}"}
    async with (
        httpx.AsyncClient(base_url=console_url, cookies={"lindungi_lang": "en"}, timeout=TIMEOUT) as page,
        httpx.AsyncClient(base_url=casework_url, headers=api_headers, timeout=TIMEOUT) as api,
    ):
        r = await page.post("/sign-in", data={"user_id": OFFICER, "credential": f"dev-{OFFICER}"})
        if r.status_code != 303:
            raise RuntimeError(f"sign-in: HTTP {r.status_code}")
        cw, con = timed["casework"], timed["console"]
        got: dict[str, list[float]] = {k: [] for k in KEYS}
        overview = (await api.get("/v1/queues")).json()
        queue = max(overview, key=lambda q: q["depth"])
        path = f"/v1/queues/{queue['id']}/cases"
        for i in range(queue_rounds + QUEUE_WARMUP):
            # each round twice: just after the queue changed (its stamp moved, as a case event in it
            # moves it: casework recomputes that queue once), and again with nothing changed (kept)
            await store.bump_stamps(rt.db, {queue["id"]}, rt.clock.now())
            q_page, html = await _server_time(page, con, "/desk", params={"queue": queue["id"]})
            q_own = q_page - _waited(timed, con)
            q_page_kept, _ = await _server_time(page, con, "/desk", params={"queue": queue["id"]})
            q_all_kept, _ = await _server_time(api, cw, "/v1/queues")
            q_cases_kept, _ = await _server_time(api, cw, path, params={"limit": 100})
            await store.bump_stamps(rt.db, {queue["id"]}, rt.clock.now())
            q_all, _ = await _server_time(api, cw, "/v1/queues")
            q_cases, body = await _server_time(api, cw, path, params={"limit": 100})
            if json.loads(body)[0]["case_id"] not in html:
                raise RuntimeError("the queue page does not show the queue's head")
            _progress(
                f"queue round {i + 1 - QUEUE_WARMUP}: page {q_page:.2f} s (kept {q_page_kept:.2f} s), "
                f"API {q_all + q_cases:.2f} s (kept {q_all_kept + q_cases_kept:.2f} s)"
            )
            if i >= QUEUE_WARMUP:
                for k, v in (
                    ("queue_page", q_page),
                    ("queues_api", q_all),
                    ("queue_cases_api", q_cases),
                    ("queue_api", q_all + q_cases),
                    ("queue_own", q_own),
                    ("queue_page_kept", q_page_kept),
                    ("queue_api_kept", q_all_kept + q_cases_kept),
                ):
                    got[k].append(v * 1000)
        picks = random.Random(9).sample(ids, min(len(ids), rounds + WARMUP))
        for i in range(rounds + WARMUP):
            case_id = picks[i % len(picks)]
            c_api, _ = await _server_time(api, cw, f"/v1/cases/{case_id}")
            c_page, html = await _server_time(page, con, f"/cases/{case_id}")
            if case_id[:8] not in html:
                raise RuntimeError("the case page does not show the case")
            c_own = c_page - _waited(timed, con)
            if i >= WARMUP:
                got["case_page"].append(c_page * 1000)
                got["case_api"].append(c_api * 1000)
                got["case_own"].append(c_own * 1000)
        _progress(f"{rounds} case rounds done")
    return got, queue


async def live_delay(urls: dict[str, str], console_url: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds from a mission's POST to intake until the desk's queue page shows the new case,
    the page read every `live_poll_ms` (1 s) as the browser's live loop does: intake, Kafka,
    casework and the page's own reads, with the stored cases in place.

    Split in two, to say where the time goes: until casework answers the case (the pipeline:
    intake, its outbox, Kafka, casework's handler and outbox), and from then until the page
    shows it (the page's reads, at the poll's pace). The first part is split again by the
    case's `opened_at` (casework's clock, the same machine's): when casework's handler opened
    it; the rest of that part is the once-a-second probe's pace and its own read (by `_id`)."""
    poll = ConsoleSettings().live_poll_ms / 1000
    out: list[float] = []
    to_case: list[float] = []
    to_open: list[float] = []
    to_posted: list[float] = []
    mission = {"authorization": "Bearer dev-kbri-seoul"}
    desk = {"authorization": f"Bearer dev-{OFFICER}"}
    async with (
        httpx.AsyncClient(base_url=console_url, cookies={"lindungi_lang": "en"}, timeout=TIMEOUT) as page,
        httpx.AsyncClient(timeout=TIMEOUT) as api,
    ):
        await page.post("/sign-in", data={"user_id": OFFICER, "credential": f"dev-{OFFICER}"})
        for i in range(rounds):
            body = {  # the highest priority there is: the head of its queue, so on the first page
                "country": "KR",
                "category": "physical_abuse",
                "severity": "critical",
                "occurred_at": "2026-11-20T09:30:00+09:00",
                "worker": {"full_name": f"Live Pekerja {i:03d} {uuid.uuid4().hex[:6]}"},
            }
            t0, posted = time.perf_counter(), datetime.now(UTC)
            r = await api.post(f"{urls['intake']}/v1/incidents", json=body, headers=mission)
            to_posted.append((time.perf_counter() - t0) * 1000)
            incident_id = r.json()["incident_id"]
            case: dict[str, Any] | None = None
            while time.perf_counter() - t0 < TIMEOUT:
                if case is None:  # where it will show: asked once casework has it
                    # by the id the incident's case gets (derived from the incident id: a worker
                    # of its own, so it opens a case), one read by `_id`; asked by incident
                    # (`GET /v1/cases?incident_id=`) it cost a read of every case each second
                    case_url = f"{urls['casework']}/v1/cases/{changes.case_id_for(incident_id)}"
                    found = await api.get(case_url, headers=desk)
                    case = found.json() if found.status_code == 200 else None
                    if case is not None:
                        to_case.append((time.perf_counter() - t0) * 1000)
                        opened = datetime.fromisoformat(case["opened_at"]) - posted  # casework's clock
                        to_open.append(opened.total_seconds() * 1000)
                if case is not None:
                    html = (await page.get("/desk", params={"queue": case["queue"]})).text
                    if case["case_id"] in html:
                        break
                await asyncio.sleep(poll)
            out.append((time.perf_counter() - t0) * 1000)
            _progress(f"live round {i + 1}: {out[-1] / 1000:.2f} s")
    return {
        "live": out,
        "live_pipeline": to_case,
        "live_opened": to_open,
        "live_posted": to_posted,
        "live_page": [total - part for total, part in zip(out, to_case, strict=False)],
    }


def report(r: dict[str, Any]) -> None:
    """Print the figures as a table, with the ratios console / API."""
    print(
        f"console: server time with N={r['n']} cases stored, {WAITING_PCT}% waiting "
        f"(bulk insert {r['insert_s']:.1f} s, read model filled {r['fill_s']:.1f} s); "
        f"queue {r['queue']} ({r['depth']} waiting), {r['queue_rounds']} rounds; "
        f"case pages {r['rounds']} rounds"
    )
    print(f"  {'read':<46} {'p50 ms':>9} {'p99 ms':>9}")
    rows = [
        ("console queue page /desk?queue={q}, q changed", "queue_page"),
        ("  of which the console's own work", "queue_own"),
        ("  casework GET /v1/queues, q changed", "queues_api"),
        ("  casework GET /v1/queues/{q}/cases, q changed", "queue_cases_api"),
        ("  casework, both reads, q changed", "queue_api"),
        ("console queue page, nothing changed", "queue_page_kept"),
        ("  casework, both reads, nothing changed", "queue_api_kept"),
        ("console case page /cases/{id}", "case_page"),
        ("  of which the console's own work", "case_own"),
        ("  casework GET /v1/cases/{id}", "case_api"),
        ("live: report POSTed to case on the queue page", "live"),
        ("  of which until casework answers the case", "live_pipeline"),
        ("    (intake answered the POST)", "live_posted"),
        ("    (casework opened it, by its opened_at)", "live_opened"),
        ("  of which until the page shows it", "live_page"),
    ]
    for label, key in rows:
        if key in r:  # a page given 0 rounds is not measured
            p50, p99 = r[key]
            print(f"  {label:<46} {p50:9.1f} {p99:9.1f}")
    for label, page_key, api_key in (("queue", "queue_page", "queue_api"), ("case", "case_page", "case_api")):
        if page_key not in r:
            continue
        p50 = r[page_key][0] / r[api_key][0]
        p99 = r[page_key][1] / r[api_key][1]
        print(f"  ratio console / API, {label} page: p50 {p50:.2f}  p99 {p99:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS
    queue_rounds = int(sys.argv[3]) if len(sys.argv) > 3 else QUEUE_ROUNDS
    report(asyncio.run(bench(n, rounds, queue_rounds)))


if __name__ == "__main__":
    main()
