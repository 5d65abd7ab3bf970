"""casework places a report by reading cases by `_id`, not by asking every case whether it holds
the incident (`incident_ids`: an array, which the local FerretDB cannot index, so that read grew
with every case of the year: issue 11). A redelivered report still finds the case it went to,
even once that case is closed, and so does one of a database from before the joins were noted."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection

from services.casework import merge, placement, store
from services.casework.app import create_app
from shared.clock import ManualClock
from shared.mongo import Doc
from shared.settings import Settings
from tests.support.casework import OFFICER, incident
from tests.support.harness import running

pytestmark = pytest.mark.integration


async def _close(cw: Any, case_id: str) -> None:
    for path, body in [("claim", {}), ("acknowledge", {}), ("resolve", {"resolution": "paid"})]:
        r = await cw.post(f"/v1/cases/{case_id}/{path}", json=body, headers=OFFICER)
        assert r.status_code == 200, r.text


async def _cases_of(cw: Any, worker_key: str) -> list[dict[str, Any]]:
    r = await cw.get("/v1/cases", params={"worker_key": worker_key}, headers=OFFICER)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def _case_reads(keep: Callable[[dict[str, Any]], bool] = lambda query: True) -> tuple[list[Doc], Any]:
    """A stand-in for AsyncCollection.find that notes the filter of each read of cases `keep` takes."""
    asked: list[Doc] = []
    real_find = AsyncCollection.find

    def find(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        query = dict(args[0] if args else kwargs.get("filter") or {})
        if self.name == store.CASES and keep(query):
            asked.append(query)
        return real_find(self, *args, **kwargs)

    return asked, find


async def test_placing_reports_reads_cases_by_id_never_by_incident(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked, find = _case_reads()

    app = create_app(settings, ManualClock())
    async with running(app):
        rt = app.state.runtime
        monkeypatch.setattr(AsyncCollection, "find", find)
        first = incident()
        second = incident(worker_key=first.worker_key)  # joins the first one's case
        # a later report of the worker under another key, linked by intake: joins by the link
        linked = incident(worker_key=uuid.uuid4().hex[:32], linked_incident_ids=[first.incident_id])
        # a report naming someone by the same name alone: suggested to the first case, and back
        named = incident(
            worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=[first.incident_id]
        )
        opened = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        joined = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second)
        again = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second)
        by_link = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=linked)
        own = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=named)
        case = await rt.db[store.CASES].find_one({"_id": opened})
        monkeypatch.undo()
    assert opened == joined == again == by_link != own
    assert case["incident_ids"] == [first.incident_id, second.incident_id, linked.incident_id]
    assert case["suggested_incident_ids"] == [named.incident_id]
    assert asked, "placement read no case at all"
    assert not [q for q in asked if "incident_ids" in q], asked


async def test_a_report_that_joined_a_case_since_closed_comes_back_to_it(settings: Settings) -> None:
    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        rt = app.state.runtime
        first = incident()
        second = incident(worker_key=first.worker_key)
        case_id = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        assert await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second) == case_id
        await _close(cw, case_id)
        # the join's event comes again (a consumer restarted before committing it): no second case
        assert await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second) == case_id
        [case] = await _cases_of(cw, first.worker_key)
        assert case["case_id"] == case_id and case["status"] == "resolved"
        assert case["incident_ids"] == [first.incident_id, second.incident_id]


async def test_the_joins_of_a_database_from_before_the_notes_are_noted_at_start(settings: Settings) -> None:
    first = incident()
    second = incident(worker_key=first.worker_key)
    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        rt = app.state.runtime
        case_id = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        assert await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second) == case_id
        await _close(cw, case_id)
        await rt.db.drop_collection(store.PLACED)  # as a database from before the notes
        assert not await store.placed_complete(rt.db)

    restarted = create_app(settings, ManualClock())
    async with running(restarted) as cw:
        rt = restarted.state.runtime
        assert await store.placed_complete(rt.db)
        assert await rt.db[store.PLACED].find_one({"_id": second.incident_id}) == {
            "_id": second.incident_id,
            "case_id": case_id,
        }
        assert await rt.db[store.PLACED].find_one({"_id": first.incident_id}) is None  # it opened the case
        assert await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=second) == case_id
        assert [c["case_id"] for c in await _cases_of(cw, first.worker_key)] == [case_id]


async def test_a_first_report_opens_its_case_reading_no_case_and_its_repeats_open_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common delivery, a report that joined nothing and links nothing, opens its case in one
    write (the unique `_id` and `open_key` refuse it when a read would have found a case); its
    redelivery finds that case, even once a merge has absorbed it, and opens none."""
    asked, find = _case_reads(lambda query: "_outbox_pending" not in query)  # not the relay's sweep

    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        rt = app.state.runtime
        first = incident(worker_key=f"unidentified-{uuid.uuid4().hex}")
        monkeypatch.setattr(AsyncCollection, "find", find)
        opened = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        monkeypatch.undo()
        assert asked == [], asked  # no case read before the opening write
        assert [c["case_id"] for c in await _cases_of(cw, first.worker_key)] == [opened]

        again = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        joining = incident(worker_key=first.worker_key)  # the same worker and family: joins, opens none
        joined = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=joining)
        assert again == joined == opened
        [case] = await _cases_of(cw, first.worker_key)
        assert case["incident_ids"] == [first.incident_id, joining.incident_id]

        # A same-name report of someone else opens its own case; the desk merges the first into it.
        named = incident(
            worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=[first.incident_id]
        )
        survivor = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=named)
        assert survivor != opened
        await merge.confirm(rt, survivor, first.incident_id, actor="officer-ani", reason="the same person")
        before = await rt.db[store.CASES].count_documents({})
        redelivered = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
        assert redelivered in (opened, survivor)
        assert await rt.db[store.CASES].count_documents({}) == before == 2


async def test_the_case_list_by_incident_reads_cases_by_id_and_finds_every_holder(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`GET /v1/cases?incident_id=...` (the mission portal's read of its reports' cases) reads the
    cases by `_id` and answers what the filter on the array alone answers, in every state a merge
    or an unmerge can leave, cut between its writes or not: the case a report opened, the one it
    joined, an absorbed case and its survivor, a chain of merges whose last close was cut (the
    middle case still open, holding what the last survivor holds), an unmerge cut before the
    survivor gave the incidents back. A database from before the notes is asked the old way until
    a start notes its holders."""
    asked, find = _case_reads(lambda query: "incident_ids" in query)

    def report(**over: Any) -> Any:
        return incident(worker_key=f"unidentified-{uuid.uuid4().hex}", **over)

    async def place(*reports: Any) -> list[str]:
        return [await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=r) for r in reports]

    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        rt = app.state.runtime
        first = report()
        joining = incident(worker_key=first.worker_key)
        named = report(suggested_incident_ids=[first.incident_id])
        later = report(suggested_incident_ids=[named.incident_id])
        mine = report()
        theirs = report(suggested_incident_ids=[mine.incident_id])
        alone = report()
        opened = await place(first, joining, named, later, mine, theirs, alone)
        assert opened[0] == opened[1]  # joined

        # a merge, then the survivor merged on into a third case, its close cut (a crash)
        await merge.confirm(rt, opened[2], first.incident_id, actor="officer-ani", reason="the same person")

        async def cut(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the process stopped here")

        with monkeypatch.context() as m:
            m.setattr(merge, "_close_absorbed", cut)
            with pytest.raises(RuntimeError, match="stopped"):
                await merge.confirm(rt, opened[3], named.incident_id, actor="officer-ani", reason="the same")
        # a merge undone, the unmerge cut before the survivor gave the incident back
        await merge.confirm(rt, opened[5], mine.incident_id, actor="officer-ani", reason="the same person")
        real_change = merge.change

        async def cut_give_back(rt_: Any, case_id: str, *args: Any, **kwargs: Any) -> Any:
            if case_id == opened[5]:
                raise RuntimeError("the process stopped here")
            return await real_change(rt_, case_id, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(merge, "change", cut_give_back)
            with pytest.raises(RuntimeError, match="stopped"):
                await merge.unmerge(rt, opened[4], actor="supervisor-budi", reason="not the same")

        every = [first, joining, named, later, mine, theirs, alone]
        lists = [[r.incident_id] for r in every] + [[r.incident_id for r in every] + [uuid.uuid4().hex]]

        async def listed(ids: list[str]) -> list[tuple[str, list[str]]]:
            r = await cw.get("/v1/cases", params={"incident_id": ids}, headers=OFFICER)
            assert r.status_code == 200, r.text
            return sorted((c["case_id"], c["incident_ids"]) for c in r.json())

        async def holders(ids: list[str]) -> list[tuple[str, list[str]]]:
            everywhere = await rt.db[store.CASES].find({"incident_ids": {"$in": ids}}).to_list()
            return sorted((d["_id"], d["incident_ids"]) for d in everywhere)

        expected = [await holders(ids) for ids in lists]
        # an id that is the notes' marker document names no case (any string may be asked)
        assert await listed([store.PLACED_COMPLETE, store.HOLDERS_COMPLETE]) == []
        confirm = f"/v1/cases/{opened[6]}/suggestions/{store.PLACED_COMPLETE}/confirm"
        r = await cw.post(confirm, json={"reason": "the same person"}, headers=OFFICER)
        assert r.status_code == 404, r.text
        # the joined report: its case (absorbed), the survivor, and the third case the cut merge
        # wrote; the undone merge's report: its case (reopened) and the survivor that keeps it
        assert [len(found) for found in expected] == [3, 3, 2, 1, 2, 1, 1, 6]
        monkeypatch.setattr(AsyncCollection, "find", find)
        assert [await listed(ids) for ids in lists] == expected
        assert asked and all("_id" in query for query in asked), asked  # never the array alone

        await rt.db.drop_collection(store.HOLDERS)  # as a database from before the notes
        asked.clear()
        assert [await listed(ids) for ids in lists] == expected
        assert asked and not any("_id" in query for query in asked)  # asked the old way
        monkeypatch.undo()

    restarted = create_app(settings, ManualClock())
    async with running(restarted) as cw:
        rt = restarted.state.runtime
        assert await store.holders_complete(rt.db)  # noted at start
        monkeypatch.setattr(AsyncCollection, "find", find)
        asked.clear()
        assert [await listed(ids) for ids in lists] == expected
        assert asked and all("_id" in query for query in asked), asked
