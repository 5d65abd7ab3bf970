"""The waiting cases' read model (casework's `waiting_cases`) on the real database: it follows each
case in and out of its queue, an older write never replaces a newer one, a redelivery changes
nothing, two replicas keep it in step, an existing database gets it at start, and unchanged
queues answer 304 to the live page's poll (casework's API and the console's desk page).

Cases are opened by calling the incident handler's use case directly (no broker round trip):
the read model is kept by the store, whichever door the write came through.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.casework import service, store
from services.casework.app import create_app
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from shared.clock import ManualClock
from shared.events.intake import IncidentAccepted
from shared.mongo import Doc
from shared.outbox import OUTBOX, PENDING
from shared.service import Runtime
from shared.settings import Settings
from tests.integration.test_console_backends import _Route
from tests.support.casework import OFFICER, OFFICER2, SUPERVISOR, incident
from tests.support.harness import running

pytestmark = pytest.mark.integration

QUEUE = "east_asia-general"


@contextlib.asynccontextmanager
async def _casework(
    settings: Settings, clock: ManualClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """casework in this process: a client, and its runtime (to open cases and read the database)."""
    app = create_app(settings, clock)
    async with running(app) as client:
        yield client, app.state.runtime


async def _open(rt: Runtime, inc: IncidentAccepted, event_id: str | None = None) -> str:
    case_id = await service.on_incident(rt, event_id=event_id or uuid.uuid4().hex, incident=inc)
    assert case_id is not None
    return case_id


async def _entries(rt: Runtime) -> dict[str, Doc]:
    return {d["_id"]: d async for d in rt.db[store.WAITING].find({})}


async def _assert_in_step(rt: Runtime) -> dict[str, Doc]:
    """Every waiting case has its entry at the case's version, with the case's fields; no other entry."""
    cases = await rt.db[store.CASES].find({}, store.ENTRY_PROJECTION).to_list()
    want = {c["_id"]: store.waiting_entry(c) for c in cases if c["status"] in ("new", "triaged")}
    got = await _entries(rt)
    assert got == want
    return got


async def _post(cw: httpx.AsyncClient, path: str, who: dict[str, str] = OFFICER, **body: Any) -> Doc:
    r = await cw.post(path, json=body, headers=who)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_the_entry_follows_its_case_through_triage_claim_close_reopen_and_merge(
    settings: Settings,
) -> None:
    clock = ManualClock()
    async with _casework(settings, clock) as (cw, rt):
        first = incident(severity="low")
        a = await _open(rt, first)
        entry = (await _entries(rt))[a]
        assert (entry["status"], entry["version"], entry["queue"], entry["severity"]) == (
            "new",
            1,
            QUEUE,
            "low",
        )
        assert "timeline" not in entry and "worker_keys" not in entry  # small: what the queue shows

        await _post(cw, f"/v1/cases/{a}/triage")
        assert (await _entries(rt))[a]["status"] == "triaged"
        await _post(cw, f"/v1/cases/{a}/priority", SUPERVISOR, priority=9, reason="pregnant")
        await _post(cw, f"/v1/cases/{a}/escalate", SUPERVISOR, level=2, reason="no answer")
        entry = (await _entries(rt))[a]
        assert (entry["priority"], entry["escalation_level"]) == (9, 2)
        await _assert_in_step(rt)

        await _post(cw, f"/v1/cases/{a}/claim")
        assert a not in await _entries(rt)  # claimed: out of the queue
        await _post(cw, f"/v1/cases/{a}/release")
        assert (await _entries(rt))[a]["status"] == "triaged"  # back, as triaged
        assert (await _post(cw, f"/v1/queues/{QUEUE}/claim-next"))["case_id"] == a
        assert a not in await _entries(rt)
        await _post(cw, f"/v1/cases/{a}/acknowledge")
        await _post(cw, f"/v1/cases/{a}/resolve", resolution="wages paid")
        await _post(cw, f"/v1/cases/{a}/close", SUPERVISOR, reason="done")
        assert a not in await _entries(rt)
        await _post(cw, f"/v1/cases/{a}/reopen", SUPERVISOR, reason="not paid after all")
        assert (await _entries(rt))[a]["status"] == "triaged"
        await _assert_in_step(rt)

        # a same-name report suggests a's incident; confirming merges b into a: b leaves the queue,
        # a takes b's graver severity; undoing the merge brings b back
        clock.advance(timedelta(minutes=1))
        b = await _open(rt, incident(severity="critical", suggested_incident_ids=[first.incident_id]))
        second = (await cw.get(f"/v1/cases/{b}", headers=OFFICER)).json()["incident_ids"][0]
        assert set(await _entries(rt)) == {a, b}
        await _post(cw, f"/v1/cases/{a}/suggestions/{second}/confirm", reason="same passport photo")
        entries = await _entries(rt)
        assert set(entries) == {a} and entries[a]["severity"] == "critical"
        await _post(cw, f"/v1/cases/{b}/unmerge", SUPERVISOR, reason="different people")
        assert set(await _entries(rt)) == {a, b}
        await _assert_in_step(rt)

        # the overview and the page read it
        queues = {q["id"]: q for q in (await cw.get("/v1/queues", headers=OFFICER)).json()}
        assert queues[QUEUE]["depth"] == 2 and queues[QUEUE]["oldest_case_id"] == a
        listed = (await cw.get(f"/v1/queues/{QUEUE}/cases", headers=OFFICER)).json()
        assert [c["case_id"] for c in listed] == [a, b]  # a: priority 9, b: critical (8)
        assert listed[0]["priority"] == 9 and listed[1]["severity"] == "critical"


async def test_an_older_write_never_replaces_a_newer_one_and_a_redelivery_changes_nothing(
    settings: Settings,
) -> None:
    async with _casework(settings, ManualClock()) as (cw, rt):
        inc = incident()
        case_id = await _open(rt, inc, event_id="event-1")
        stale = await store.get_raw(rt.db, case_id)  # version 1, waiting
        assert stale is not None and stale[store.VERSION] == 1

        await _post(cw, f"/v1/cases/{case_id}/priority", SUPERVISOR, priority=10, reason="urgent")
        await store.follow(rt.db, stale)  # a slow replica's write of version 1 lands late
        entry = (await _entries(rt))[case_id]
        assert (entry["version"], entry["priority"]) == (2, 10)

        # the case leaves the queue (version 3), then the late write of version 1 lands: it is
        # written in (nothing newer is stored), then taken out again by its own check of the case
        await _post(cw, f"/v1/cases/{case_id}/claim")
        assert case_id not in await _entries(rt)
        await store.follow(rt.db, stale)
        assert case_id not in await _entries(rt)

        # a redelivery of the incident finds its case and changes neither the entry nor the stamps
        await _post(cw, f"/v1/cases/{case_id}/release")
        before, stamps = await _entries(rt), await store.stamps(rt.db)
        assert await _open(rt, inc, event_id="event-1") == case_id
        assert await _entries(rt) == before and await store.stamps(rt.db) == stamps

        # a crash between the case's write and its entry's: the next delivery of the event repairs it
        await rt.db[store.WAITING].delete_one({"_id": case_id})
        assert await _open(rt, inc, event_id="event-1") == case_id
        assert (await _entries(rt))[case_id]["version"] == before[case_id]["version"]


async def test_two_replicas_keep_the_entries_in_step_with_the_cases(settings: Settings) -> None:
    clock = ManualClock()
    async with _casework(settings, clock) as (a, rt_a), _casework(settings, clock) as (b, rt_b):
        ids = await asyncio.gather(*(_open(rt_a if i % 2 else rt_b, incident()) for i in range(12)))

        async def work(i: int, case_id: str) -> None:
            one, other = (a, b) if i % 2 else (b, a)
            await one.post(f"/v1/cases/{case_id}/triage", json={}, headers=OFFICER)
            if i < 8:
                r = await other.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER2)
                assert r.status_code == 200, r.text
            reason = {"priority": i % 10, "reason": "x"}
            await one.post(f"/v1/cases/{case_id}/priority", json=reason, headers=SUPERVISOR)

        await asyncio.gather(*(work(i, c) for i, c in enumerate(ids)))
        entries = await _assert_in_step(rt_a)
        assert len(entries) == 4
        assert await rt_b.db[store.CASES].count_documents({"status": "assigned"}) == 8
        queues = (await b.get("/v1/queues", headers=OFFICER)).json()
        assert next(q["depth"] for q in queues if q["id"] == QUEUE) == 4


async def test_an_existing_database_gets_its_entries_at_start(settings: Settings) -> None:
    clock = ManualClock()
    async with _casework(settings, clock) as (cw, rt):
        waiting = await _open(rt, incident())
        claimed = await _open(rt, incident())
        await _post(cw, f"/v1/cases/{claimed}/claim")
        # cases stored before the read model existed: no version, no entry (as bench.console stores them)
        raw = []
        for _ in range(3):
            doc = await store.get_raw(rt.db, await _open(rt, incident()))
            assert doc is not None
            del doc[store.VERSION]
            raw.append(
                {**doc, "_id": uuid.uuid4().hex, "open_key": uuid.uuid4().hex, OUTBOX: [], PENDING: False}
            )
        await rt.db[store.CASES].insert_many(raw)
        # and a crash left the claimed case's entry behind and lost the waiting one's
        held = await store.get_raw(rt.db, waiting)
        assert held is not None
        await rt.db[store.WAITING].insert_one(store.waiting_entry({**held, "_id": claimed}))
        await rt.db[store.WAITING].delete_one({"_id": waiting})
    async with _casework(settings, clock) as (cw, rt):
        entries = await _assert_in_step(rt)
        assert waiting in entries and claimed not in entries
        assert {d["_id"] for d in raw} <= set(entries)


async def test_an_unchanged_queue_answers_304_and_pages_follow_the_claim_order(settings: Settings) -> None:
    async with _casework(settings, ManualClock()) as (cw, rt):
        low, high = await _open(rt, incident(severity="low")), await _open(rt, incident(severity="high"))
        first = await cw.get("/v1/queues", headers=OFFICER)
        page = await cw.get(f"/v1/queues/{QUEUE}/cases", params={"limit": 1}, headers=OFFICER)
        assert [c["case_id"] for c in page.json()] == [high]
        for r in (first, page):
            assert r.status_code == 200 and r.headers["etag"].startswith('W/"')
            since = {**OFFICER, "if-none-match": r.headers["etag"]}
            again = await cw.get(r.request.url.raw_path.decode(), headers=since)
            assert again.status_code == 304 and again.content == b""
        nxt = await cw.get(page.links["next"]["url"], headers=OFFICER)
        assert [c["case_id"] for c in nxt.json()] == [low] and "next" not in nxt.links

        await _post(cw, f"/v1/cases/{low}/triage")  # a change in the queue: a new tag, the new content
        for r in (first, page):
            since = {**OFFICER, "if-none-match": r.headers["etag"]}
            again = await cw.get(r.request.url.raw_path.decode(), headers=since)
            assert again.status_code == 200 and again.headers["etag"] != r.headers["etag"]
        # the overview keeps each queue's summary until the queue changes: a summary altered under
        # the current count is what it shows, and the next change reads the queue's entries again
        depth = {q["id"]: q["depth"] for q in (await cw.get("/v1/queues", headers=OFFICER)).json()}
        assert depth[QUEUE] == 2 and sum(depth.values()) == 2
        await rt.db[store.SUMMARIES].update_one({"_id": QUEUE}, {"$set": {"depth": 99}})
        shown = (await cw.get("/v1/queues", headers=OFFICER)).json()
        assert next(q["depth"] for q in shown if q["id"] == QUEUE) == 99
        await _post(cw, f"/v1/cases/{high}/claim")
        shown = (await cw.get("/v1/queues", headers=OFFICER)).json()
        assert [(q["depth"], q["oldest_case_id"]) for q in shown if q["id"] == QUEUE] == [(1, low)]

        bad = await cw.get(f"/v1/queues/{QUEUE}/cases", params={"after": "nonsense!"}, headers=OFFICER)
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "after"


async def test_the_desk_page_answers_its_live_poll_with_304_until_the_queue_changes(
    settings: Settings,
) -> None:
    clock = ManualClock()
    casework = create_app(settings, clock)
    async with running(casework):
        rt: Runtime = casework.state.runtime
        await _open(rt, incident())
        console = console_app(
            ConsoleSettings(casework_url="http://casework"),
            clock,
            transport=_Route({"casework": httpx.ASGITransport(app=casework)}),
        )
        async with (
            console.router.lifespan_context(console),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=console), base_url="http://console"
            ) as client,
        ):
            await client.post("/sign-in", data={"user_id": "officer-ani", "credential": "dev-officer-ani"})
            client.cookies.set("lindungi_lang", "en")
            path = f"/desk?queue={QUEUE}"
            page = await client.get(path)
            tag = page.headers["etag"]
            assert page.status_code == 200 and f'data-page-tag="{tag}"' in html.unescape(page.text)
            live = {"x-requested-with": "live", "if-none-match": tag}
            again = await client.get(path, headers=live)
            assert again.status_code == 304 and again.content == b""

            new = await _open(rt, incident(severity="critical"))
            changed = await client.get(path, headers=live)
            assert changed.status_code == 200 and new in changed.text and changed.headers["etag"] != tag
            live["if-none-match"] = changed.headers["etag"]
            assert (await client.get(path, headers=live)).status_code == 304
            # "time left" moves with the clock: the next time slot renders the page again
            clock.advance(timedelta(minutes=1))
            assert (await client.get(path, headers=live)).status_code == 200
