"""The waiting cases' read model (casework's `waiting`, kept from its own case events) on the real
broker and database: the queue listing and the overview follow a case in and out of its queue and
between queues; an old or redelivered event, or an older read, never brings back a case that left;
two replicas keep one entry per case; a database from before the read model is filled at start."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.casework import handlers, queue_cache, store
from services.casework.app import create_app
from shared import topics
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.casework import CaseOpened
from shared.mongo import Doc
from shared.service import Runtime
from shared.settings import Settings
from tests.support.casework import OFFICER, OFFICER2, SUPERVISOR, auth, incident, publish_incident
from tests.support.harness import envelopes, eventually, produce, read_topic, running

pytestmark = pytest.mark.integration

GENERAL = "east_asia-general"
TRAFFICKING = "east_asia-trafficking"
QUEUES = (GENERAL, TRAFFICKING)


async def _listed(client: httpx.AsyncClient, queue: str) -> list[str]:
    r = await client.get(f"/v1/queues/{queue}/cases", headers=OFFICER)
    assert r.status_code == 200, r.text
    return [c["case_id"] for c in r.json()]


async def _overview(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/queues", headers=OFFICER)
    assert r.status_code == 200, r.text
    return {q["id"]: q for q in r.json()}


async def _until_listed(client: httpx.AsyncClient, queue: str, want: list[str]) -> None:
    """Wait until the queue lists exactly the cases `want` and its overview agrees."""

    async def there() -> bool:
        depth = (await _overview(client))[queue]["depth"]
        return sorted(await _listed(client, queue)) == sorted(want) and depth == len(want)

    await eventually(there, timeout=20)


async def _open(settings: Settings, client: httpx.AsyncClient, **over: Any) -> str:
    inc = incident(**over)
    await publish_incident(settings, inc)

    async def opened() -> str | None:
        r = await client.get("/v1/cases", params={"incident_id": inc.incident_id}, headers=OFFICER)
        return r.json()[0]["case_id"] if r.json() else None

    return await eventually(opened)  # type: ignore[no-any-return]


async def _follow_after(rt: Runtime, case_id: str, *, stale: Doc) -> None:
    """Follow a case whose first read is `stale` (an older read of it, as a slow replica's), then
    the case as stored."""
    reads = [stale]
    real_sources = store.entry_sources

    async def stale_then_real(db: Any, ids: list[str]) -> list[Doc]:
        assert ids == [case_id]
        return [reads.pop()] if reads else await real_sources(db, ids)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "entry_sources", stale_then_real)
        await handlers.follow_case(rt, case_id)
    assert reads == [], "the stale read was used"


def _rt(app: Any) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


async def test_a_case_is_listed_while_it_waits_and_moves_when_triage_recategorises_it(
    settings: Settings,
) -> None:
    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        case_id = await _open(settings, cw)
        await _until_listed(cw, GENERAL, [case_id])
        [listed] = (await cw.get(f"/v1/queues/{GENERAL}/cases", headers=OFFICER)).json()
        case = (await cw.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
        # the entry answers every field of the listing as the case holds it
        assert listed == {k: case[k] for k in listed}
        overview = await _overview(cw)
        assert overview[GENERAL]["oldest_case_id"] == case_id
        assert overview[GENERAL]["oldest_opened_at"] == case["opened_at"]

        r = await cw.post(f"/v1/cases/{case_id}/claim", json={}, headers=OFFICER)
        assert r.status_code == 200, r.text
        await _until_listed(cw, GENERAL, [])
        assert (await _overview(cw))[GENERAL]["oldest_case_id"] is None

        r = await cw.post(f"/v1/cases/{case_id}/release", json={"reason": "not mine"}, headers=OFFICER)
        assert r.status_code == 200, r.text
        await _until_listed(cw, GENERAL, [case_id])

        r = await cw.post(
            f"/v1/cases/{case_id}/triage",
            json={"category": "trafficking", "reason": "debt bondage"},
            headers=OFFICER,
        )
        assert r.status_code == 200, r.text
        assert r.json()["queue"] == TRAFFICKING
        await _until_listed(cw, TRAFFICKING, [case_id])
        await _until_listed(cw, GENERAL, [])
        [moved] = (await cw.get(f"/v1/queues/{TRAFFICKING}/cases", headers=OFFICER)).json()
        assert (moved["status"], moved["category"]) == ("triaged", "trafficking")
        assert moved["priority"] == r.json()["priority"]
        assert await _rt(app).db[store.WAITING].count_documents({}) == 1


async def test_a_redelivered_event_or_an_older_read_never_brings_back_a_claimed_case(
    settings: Settings,
) -> None:
    clock = ManualClock()
    app = create_app(settings, clock)
    rt = _rt(app)
    handled: list[str] = []

    async def seen(env: Envelope) -> None:
        handled.append(env.id)

    rt.after_handle.append(seen)
    async with running(app) as cw:
        case_id = await _open(settings, cw)
        await _until_listed(cw, GENERAL, [case_id])
        waiting_read = await store.entry_source(rt.db, case_id)  # the case read while it waited
        assert waiting_read is not None
        r = await cw.post(f"/v1/queues/{GENERAL}/claim-next", headers=OFFICER)
        assert r.json()["case_id"] == case_id
        await _until_listed(cw, GENERAL, [])

        # the CaseOpened again, as a redelivery: the case is read, not the event, so nothing returns
        records = await read_topic(settings, topics.CASES.name, min_count=2)
        decoded = zip(records, envelopes(records), strict=True)
        [(record, opened)] = [(r, e) for r, e in decoded if e["type"] == CaseOpened.type]
        await produce(settings, topics.CASES.name, record.value, key=case_id.encode())
        await eventually(lambda: _count(handled, opened["id"], 2))
        assert await _listed(cw, GENERAL) == []

        # an older read written after the claim removed the entry: the follower writes it (the
        # delete left no count behind), reads the case's count again and takes it back out
        await _follow_after(rt, case_id, stale=waiting_read)
        assert await rt.db[store.WAITING].find_one({"_id": case_id}) is None
        assert await _listed(cw, GENERAL) == []

        # released, the case waits again with a higher count: an older read no longer writes at all
        r = await cw.post(f"/v1/cases/{case_id}/release", json={}, headers=OFFICER)
        assert r.status_code == 200, r.text
        await _until_listed(cw, GENERAL, [case_id])
        stored = await rt.db[store.WAITING].find_one({"_id": case_id})
        assert stored is not None and stored["version"] > store.version_of(waiting_read)
        # a newer version is stored: nothing written, nothing for the follower to read again
        assert await store.keep_waiting(rt.db, [waiting_read], clock.now()) == []
        assert await rt.db[store.WAITING].find_one({"_id": case_id}) == stored


async def _count(handled: list[str], event_id: str, n: int) -> bool:
    return handled.count(event_id) >= n


async def test_two_replicas_keep_one_entry_per_waiting_case(settings: Settings) -> None:
    clock = ManualClock()
    first = create_app(settings, clock)
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(first))
        b = await stack.enter_async_context(running(create_app(settings, clock)))
        ids = [await _open(settings, a) for _ in range(6)]
        # claims, releases and a triage through both replicas; both consume the case events
        for i, case_id in enumerate(ids[:4]):
            client, who = (a, OFFICER) if i % 2 else (b, OFFICER2)
            assert (await client.post(f"/v1/cases/{case_id}/claim", json={}, headers=who)).status_code == 200
        for case_id, client, who in ((ids[0], b, OFFICER2), (ids[1], a, OFFICER)):
            r = await client.post(f"/v1/cases/{case_id}/release", json={}, headers=who)
            assert r.status_code == 200, r.text
        r = await a.post(f"/v1/cases/{ids[4]}/triage", json={"category": "trafficking"}, headers=OFFICER)
        assert r.status_code == 200, r.text

        async def settled() -> bool:
            cases = (await a.get("/v1/cases", params={"limit": 50}, headers=OFFICER)).json()
            waiting = [c for c in cases if c["status"] in ("new", "triaged")]
            want = {q: sorted(c["case_id"] for c in waiting if c["queue"] == q) for q in QUEUES}
            for client in (a, b):
                for q, expected in want.items():
                    if sorted(await _listed(client, q)) != expected:
                        return False
            return True

        await eventually(settled, timeout=20)
        entries = await _rt(first).db[store.WAITING].find({}).to_list()
        assert sorted(e["_id"] for e in entries) == sorted([ids[0], ids[1], ids[4], ids[5]])
        assert {e["_id"]: e["queue"] for e in entries}[ids[4]] == TRAFFICKING


async def test_a_database_from_before_the_read_model_is_filled_at_start(settings: Settings) -> None:
    clock = ManualClock()
    before = create_app(settings, clock)
    async with running(before) as cw:
        ids = [await _open(settings, cw) for _ in range(3)]
        assert (await cw.post(f"/v1/cases/{ids[0]}/claim", json={}, headers=OFFICER)).status_code == 200
        await _until_listed(cw, GENERAL, ids[1:])
        await _rt(before).db.drop_collection(store.WAITING)  # as a database from before it

    async with running(create_app(settings, clock)) as cw:
        # filled before the service answers: no event is replayed (the group committed them)
        listed = await _listed(cw, GENERAL)
        assert sorted(listed) == sorted(ids[1:])
        assert (await _overview(cw))[GENERAL]["depth"] == 2
        # a second start finds it filled and leaves it; a case claimed now still leaves it
        assert (await cw.post(f"/v1/cases/{ids[1]}/claim", json={}, headers=OFFICER)).status_code == 200
        await _until_listed(cw, GENERAL, [ids[2]])


# --- the change stamps and the per-replica cache of queue answers ----------------------------------


def _followed(rt: Runtime) -> list[str]:
    """The cases whose CaseOpened casework's own consumer has handled (the follow and its stamps'
    bump done). A queue listed before that may be cached under a stamp the bump then moves."""
    done: list[str] = []

    async def seen(env: Envelope) -> None:
        if env.type == CaseOpened.type:
            done.append(env.data["case_id"])

    rt.after_handle.append(seen)
    return done


async def _settled(followed: list[str], case_id: str, client: httpx.AsyncClient) -> None:
    """Wait for the case's CaseOpened to be followed, then list its queue (and the overview) again:
    both are cached from here under the stamp the follower left."""

    async def done() -> bool:
        return case_id in followed

    await eventually(done, timeout=20)
    assert await _listed(client, GENERAL) == [case_id]
    assert (await _overview(client))[GENERAL]["depth"] == 1


async def _changed_quietly(rt: Runtime, case_id: str, change: Doc) -> None:
    """A case change with no case event (nothing else follows it): the test plays the follower."""
    update = {"$set": change, "$inc": {store.VERSION: 1}}
    result = await rt.db[store.CASES].update_one({"_id": case_id}, update)
    assert result.modified_count == 1


async def _follow_without_bump(rt: Runtime, case_id: str, *, crash: bool = False) -> None:
    """The follower writes the entry and loses the stamps' bump (skipped, or a crash right there)."""

    async def lost(*_: Any) -> None:
        if crash:
            raise RuntimeError("crashed before the bump")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "bump_stamps", lost)
        if crash:
            with pytest.raises(RuntimeError, match="crashed before the bump"):
                await handlers.follow_case(rt, case_id)
        else:
            await handlers.follow_case(rt, case_id)


async def test_an_unchanged_queue_is_answered_from_the_cache_and_a_lost_bump_is_healed_by_redelivery(
    settings: Settings,
) -> None:
    clock = ManualClock()
    app = create_app(settings, clock)
    rt = _rt(app)
    cache = queue_cache.of(rt)
    followed = _followed(rt)
    async with running(app) as cw:
        case_id = await _open(settings, cw)
        await _until_listed(cw, GENERAL, [case_id])
        await _settled(followed, case_id, cw)
        stamp = await store.stamp(rt.db, GENERAL)
        assert stamp is not None and stamp[0] >= 1, "the follower moved the queue's stamp"
        hits = cache.hits
        first = await _listed_full(cw, GENERAL)
        assert await _listed_full(cw, GENERAL) == first
        await _overview(cw)
        assert cache.hits >= hits + 2, "an unchanged queue is answered from the cache"

        # a higher priority, written into the entry while the stamps' bump is lost: the cached
        # answer still stands (which is what a lost bump costs) ...
        await _changed_quietly(rt, case_id, {"priority": 9})
        await _follow_without_bump(rt, case_id)
        entry = await rt.db[store.WAITING].find_one({"_id": case_id})
        assert entry is not None and entry["priority"] == 9
        assert [c["priority"] for c in await _listed_full(cw, GENERAL)] == [first[0]["priority"]]
        # ... until the event comes back: the entry holds that version already, the stamps move
        await handlers.follow_case(rt, case_id)
        assert [c["priority"] for c in await _listed_full(cw, GENERAL)] == [9]

        # recategorised, and the follower crashes before the bump: both queues are stale, then healed
        assert (await _overview(cw))[TRAFFICKING]["depth"] == 0
        await _listed(cw, TRAFFICKING)
        await _changed_quietly(rt, case_id, {"queue": TRAFFICKING, "category": "trafficking"})
        await _follow_without_bump(rt, case_id, crash=True)
        assert (await _listed(cw, GENERAL), await _listed(cw, TRAFFICKING)) == ([case_id], [])
        await handlers.follow_case(rt, case_id)  # the redelivery
        assert (await _listed(cw, GENERAL), await _listed(cw, TRAFFICKING)) == ([], [case_id])
        overview = await _overview(cw)
        assert (overview[GENERAL]["depth"], overview[TRAFFICKING]["depth"]) == (0, 1)
        moved = await rt.db[store.WAITING].find_one({"_id": case_id})
        assert moved is not None and moved["left"] == [GENERAL]
        await _changed_quietly(rt, case_id, {"priority": 8})
        await handlers.follow_case(rt, case_id)  # the next change names only the queue it is in
        moved = await rt.db[store.WAITING].find_one({"_id": case_id})
        assert moved is not None and (moved["priority"], moved["left"]) == (8, [])

        # taken out of its queue, crashed before the bump: the tombstone is listed nowhere, the
        # cached answer still shows the case, and the redelivery moves the stamp and drops the tombstone
        assert await _listed(cw, TRAFFICKING) == [case_id]  # kept under the stamp it has now
        await _changed_quietly(rt, case_id, {"status": "assigned", "assignee": "officer-ani"})
        await _follow_without_bump(rt, case_id, crash=True)
        tomb = await rt.db[store.WAITING].find_one({"_id": case_id})
        assert tomb is not None and tomb["queue"] is None and tomb["left"] == [TRAFFICKING]
        assert await store.waiting_in(rt.db, TRAFFICKING, limit=10) == []
        assert await _listed(cw, TRAFFICKING) == [case_id], "the cache hides it until the stamp moves"
        await handlers.follow_case(rt, case_id)
        assert await _listed(cw, TRAFFICKING) == []
        assert (await _overview(cw))[TRAFFICKING]["depth"] == 0
        assert await rt.db[store.WAITING].find_one({"_id": case_id}) is None


async def test_a_lost_bump_without_redelivery_lasts_no_longer_than_the_ttl(settings: Settings) -> None:
    clock = ManualClock()
    app = create_app(settings, clock)
    rt = _rt(app)
    followed = _followed(rt)
    async with running(app) as cw:
        case_id = await _open(settings, cw)
        await _until_listed(cw, GENERAL, [case_id])
        await _settled(followed, case_id, cw)
        await _changed_quietly(rt, case_id, {"status": "assigned", "assignee": "officer-ani"})
        await _follow_without_bump(rt, case_id)  # the entry is gone, the stamp did not move
        assert await rt.db[store.WAITING].find_one({"_id": case_id}) is None
        clock.advance(queue_cache.TTL - timedelta(seconds=1))
        assert await _listed(cw, GENERAL) == [case_id]
        assert (await _overview(cw))[GENERAL]["depth"] == 1
        clock.advance(timedelta(seconds=1))
        assert await _listed(cw, GENERAL) == []
        assert (await _overview(cw))[GENERAL]["depth"] == 0


async def test_two_replicas_each_see_every_change_through_their_own_cache(settings: Settings) -> None:
    clock = ManualClock()
    first, second = create_app(settings, clock), create_app(settings, clock)
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(first))
        b = await stack.enter_async_context(running(second))
        for client in (a, b):  # both caches hold the empty queue
            assert await _listed(client, GENERAL) == []
            assert (await _overview(client))[GENERAL]["depth"] == 0
        case_id = await _open(settings, a)
        for client in (a, b):
            await _until_listed(client, GENERAL, [case_id])
        r = await b.post(f"/v1/cases/{case_id}/claim", json={}, headers=OFFICER2)
        assert r.status_code == 200, r.text
        for client in (a, b):
            await _until_listed(client, GENERAL, [])
        r = await a.post(f"/v1/cases/{case_id}/release", json={}, headers=OFFICER2)  # through the other one
        assert r.status_code == 200, r.text
        for client in (a, b):
            await _until_listed(client, GENERAL, [case_id])
        assert queue_cache.of(_rt(first)).hits > 0 and queue_cache.of(_rt(second)).hits > 0


async def _listed_full(client: httpx.AsyncClient, queue: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/queues/{queue}/cases", headers=OFFICER)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# --- the officers' load (store.LOADS), kept by the same follower --------------------------------------


async def _loads(client: httpx.AsyncClient) -> dict[str, dict[str, int]]:
    r = await client.get("/v1/supervision", headers=SUPERVISOR)
    assert r.status_code == 200, r.text
    return {o.pop("officer"): o for o in r.json()["officers"]}


def _load(assigned: int = 0, in_progress: int = 0) -> dict[str, int]:
    return {"assigned": assigned, "in_progress": in_progress, "awaiting_repatriation": 0}


async def test_an_officers_load_follows_claims_reassignments_and_closures(settings: Settings) -> None:
    """Supervision counts each officer's worked cases from one small entry per worked case, which
    follows the case: claimed, acknowledged, reassigned, resolved; an older read of the case written
    after it left the officer's hands is taken back out."""
    clock = ManualClock()
    app = create_app(settings, clock)
    rt = _rt(app)
    async with running(app) as cw:
        first, second = await _open(settings, cw), await _open(settings, cw)
        for case_id, who in ((first, OFFICER), (second, OFFICER2)):
            assert (await cw.post(f"/v1/cases/{case_id}/claim", json={}, headers=who)).status_code == 200
        worked_read = await store.entry_source(rt.db, first)  # read while Ani works it
        r = await cw.post(f"/v1/cases/{second}/acknowledge", json={}, headers=OFFICER2)
        assert r.status_code == 200, r.text
        want = {"officer-ani": _load(assigned=1), "officer-budi": _load(in_progress=1)}
        await eventually(lambda: _same(cw, want))

        to_citra = {"assignee": "officer-citra", "reason": "x"}
        r = await cw.post(f"/v1/cases/{first}/reassign", json=to_citra, headers=SUPERVISOR)
        assert r.status_code == 200, r.text
        r = await cw.post(f"/v1/cases/{second}/resolve", json={"resolution": "paid"}, headers=OFFICER2)
        assert r.status_code == 200, r.text
        await eventually(lambda: _same(cw, {"officer-citra": _load(assigned=1)}))
        r = await cw.post(f"/v1/cases/{first}/release", json={}, headers=auth("officer-citra"))
        assert r.status_code == 200, r.text
        await eventually(lambda: _same(cw, {}))

        # the read from while Ani worked it, written after the release took the entry out: the
        # follower writes it, reads the case's count again, and takes it back out
        await _follow_after(rt, first, stale=worked_read)
        assert await rt.db[store.LOADS].find_one({"_id": first}) is None
        assert await _loads(cw) == {}


async def _same(client: httpx.AsyncClient, want: dict[str, dict[str, int]]) -> bool:
    return await _loads(client) == want


async def test_the_load_of_a_database_from_before_it_is_filled_at_start(settings: Settings) -> None:
    clock = ManualClock()
    before = create_app(settings, clock)
    async with running(before) as cw:
        ids = [await _open(settings, cw) for _ in range(3)]
        for case_id in ids[:2]:
            assert (await cw.post(f"/v1/cases/{case_id}/claim", json={}, headers=OFFICER)).status_code == 200
        await eventually(lambda: _same(cw, {"officer-ani": _load(assigned=2)}))
        await _rt(before).db.drop_collection(store.LOADS)  # as a database from before it

    after = create_app(settings, clock)
    async with running(after) as cw:
        # filled before the service answers: no event is replayed (the group committed them)
        assert await _loads(cw) == {"officer-ani": _load(assigned=2)}
        entry = await _rt(after).db[store.LOADS].find_one({"_id": ids[0]})
        assert entry is not None and (entry["assignee"], entry["status"]) == ("officer-ani", "assigned")
        # a filled entry follows its case like any other: released, it goes; a new claim comes in
        assert (await cw.post(f"/v1/cases/{ids[0]}/release", json={}, headers=OFFICER)).status_code == 200
        await eventually(lambda: _same(cw, {"officer-ani": _load(assigned=1)}))
        assert (await cw.post(f"/v1/cases/{ids[2]}/claim", json={}, headers=OFFICER)).status_code == 200
        await eventually(lambda: _same(cw, {"officer-ani": _load(assigned=2)}))
        assert await _rt(after).db[store.LOADS].find_one({"_id": ids[0]}) is None
