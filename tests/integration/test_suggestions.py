"""A desk officer decides a suggested link: reject it (for good), or confirm it and merge the two
cases; a supervisor can undo a merge. Nothing is lost on the way: every incident is in exactly
one open case at the end of each step, and both timelines say who decided what and why."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.casework import merge, placement, store
from services.casework.app import create_app as casework_app
from services.casework.handlers import incident_handlers
from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.errors import Conflict
from shared.events.intake import IncidentAccepted, IncidentMatched, MatchMethod, WorkerMatch
from shared.settings import Settings
from tests.integration.test_same_name import KL, RIYADH, case_of, report
from tests.support.casework import OFFICER, SUPERVISOR, envelope, incident
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


async def _pair(
    intake: httpx.AsyncClient, cw: httpx.AsyncClient, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two reports of one name from two missions: two cases, the second suggesting the first."""
    sa = await intake.post("/v1/incidents", json=report("SA", "Riyadh", full_name=name), headers=RIYADH)
    my = await intake.post("/v1/incidents", json=report("MY", "Sabah", full_name=name), headers=KL)
    a, b = sa.json()["incident_id"], my.json()["incident_id"]
    first = await case_of(cw, a)

    async def suggested_back() -> dict[str, Any] | None:  # intake's suggestion reaches the first case too
        doc = (await cw.get(f"/v1/cases/{first['case_id']}", headers=OFFICER)).json()
        return doc if b in doc.get("suggested_incident_ids", []) else None

    return await eventually(suggested_back), await case_of(cw, b)


async def _get(cw: httpx.AsyncClient, case_id: str, who: dict[str, str] = OFFICER) -> dict[str, Any]:
    r = await cw.get(f"/v1/cases/{case_id}", headers=who)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _kinds(doc: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in doc["timeline"]]


async def test_a_rejected_suggestion_leaves_both_cases_for_good(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(intake_app(settings, clock)) as intake, running(casework_app(settings, clock)) as cw:
        first, second = await _pair(intake, cw, "Nur Aini")
        assert (await _get(cw, second["case_id"]))["suggestion_actions"] == ["confirm", "reject"]
        assert (await _get(cw, second["case_id"], bearer_auditor()))["suggestion_actions"] == []
        a, b = first["incident_ids"][0], second["incident_ids"][0]
        url = f"/v1/cases/{second['case_id']}/suggestions/{a}/reject"
        assert (await cw.post(url, json={"reason": "x"}, headers=bearer_auditor())).status_code == 403
        r = await cw.post(url, json={"reason": "different employers and villages"}, headers=OFFICER)
        assert r.status_code == 200, r.text
        for doc, other in ((await _get(cw, second["case_id"]), a), (await _get(cw, first["case_id"]), b)):
            assert doc["suggested_incident_ids"] == [] and doc["rejected_suggestions"] == [other]
            rejected = [e for e in doc["timeline"] if e["kind"] == "suggestion_rejected"]
            assert [(e["by"], e["incident_id"], e["reason"]) for e in rejected] == [
                ("officer-ani", other, "different employers and villages")
            ]
            assert "open_key" not in doc and "join_key" not in doc  # storage keys stay inside
        again = await cw.post(url, json={"reason": "again"}, headers=OFFICER)
        assert again.status_code == 409  # nothing suggested any more


async def test_a_confirmed_suggestion_merges_and_a_supervisor_can_undo_it(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(intake_app(settings, clock)) as intake, running(casework_app(settings, clock)) as cw:
        first, second = await _pair(intake, cw, "Siti Rohmah")
        a, b = first["incident_ids"][0], second["incident_ids"][0]
        url = f"/v1/cases/{first['case_id']}/suggestions/{b}/confirm"
        r = await cw.post(url, json={"reason": "same passport photo sent by both missions"}, headers=OFFICER)
        assert r.status_code == 200, r.text
        survivor, absorbed = await _get(cw, first["case_id"]), await _get(cw, second["case_id"])
        assert sorted(survivor["incident_ids"]) == sorted([a, b])
        assert survivor["merged_from"] == [second["case_id"]] and survivor["suggested_incident_ids"] == []
        assert (absorbed["status"], absorbed["merged_into"]) == ("closed", first["case_id"])
        assert _kinds(absorbed)[0] == "opened" and _kinds(absorbed)[-1] == "merged_into"  # its timeline kept
        assert _kinds(survivor)[-1] == "merged_from"
        # The incident now belongs to the survivor; the closed case still lists it (history).
        open_cases = (await cw.get("/v1/cases", params={"incident_id": b}, headers=OFFICER)).json()
        assert {c["case_id"]: c["status"] for c in open_cases} == {
            first["case_id"]: survivor["status"],
            second["case_id"]: "closed",
        }
        # The same request again (a retry) changes nothing; a plain reopen is refused.
        again = await cw.post(url, json={"reason": "retry"}, headers=OFFICER)
        assert again.status_code == 200 and sorted(again.json()["incident_ids"]) == sorted([a, b])
        assert _kinds(await _get(cw, first["case_id"])).count("merged_from") == 1
        reopen = await cw.post(
            f"/v1/cases/{second['case_id']}/reopen", json={"reason": "x"}, headers=SUPERVISOR
        )
        assert reopen.status_code == 409

        # Undo: officers may not, a supervisor may; each case is as it was, both timelines say so.
        assert "unmerge" not in (await _get(cw, second["case_id"]))["actions"]
        assert "unmerge" in (await _get(cw, second["case_id"], SUPERVISOR))["actions"]
        undo = f"/v1/cases/{second['case_id']}/unmerge"
        assert (await cw.post(undo, json={"reason": "x"}, headers=OFFICER)).status_code == 403
        r = await cw.post(undo, json={"reason": "the missions found two women"}, headers=SUPERVISOR)
        assert r.status_code == 200, r.text
        survivor, restored = await _get(cw, first["case_id"]), await _get(cw, second["case_id"])
        assert survivor["incident_ids"] == [a] and survivor.get("merged_from") == []
        assert (restored["status"], restored.get("merged_into")) == ("new", None)
        assert _kinds(restored)[-1] == _kinds(survivor)[-1] == "unmerged"
        assert (await cw.post(undo, json={"reason": "again"}, headers=SUPERVISOR)).status_code == 409


def bearer_auditor() -> dict[str, str]:
    return {"authorization": "Bearer dev-auditor-fajar"}


async def test_a_chain_of_merges_brings_the_first_reports_news_to_the_last_survivor(
    settings: Settings,
) -> None:
    """Six cases of one person, merged one into the next by five confirmations: the first report
    is still found held by the open case at the end of the chain (not only the closed ones it
    passed through), a late match of its worker reaches that case, and a seventh case's
    confirmation of the first report takes the open case, not a closed one."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        reports: list[IncidentAccepted] = []
        cases: list[str] = []
        for k in range(7):  # each its own case, suggesting the report before it (the last: the first)
            earlier = [reports[k - 1 if k < 6 else 0].incident_id] if reports else []
            named = incident(worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=earlier)
            cases.append(await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=named))
            reports.append(named)
            clock.advance(timedelta(minutes=1))  # oldest first: case 0, the first one absorbed
        for k in range(1, 6):  # case k absorbs case k-1: 0 -> 1 -> 2 -> 3 -> 4 -> 5
            await merge.confirm(rt, cases[k], reports[k - 1].incident_id, actor="officer-ani", reason="same")
        first = reports[0].incident_id
        listed = await cw.get("/v1/cases", params={"incident_id": first}, headers=OFFICER)
        assert sorted(c["case_id"] for c in listed.json()) == sorted(cases[:6])
        held = await placement.cases_holding(rt, [first])
        assert [doc["_id"] for doc in held] == cases[:6]  # each one it passed through
        assert placement.live_holder(held)["_id"] == cases[5]  # type: ignore[index]

        matched = IncidentMatched(
            incident_id=first,
            worker_key=reports[0].worker_key,
            match=WorkerMatch(worker_id="w-chain", method=MatchMethod.NIK, confidence=1),
            departure_id="dep-chain",
            matched_at=NOW,
        )
        await incident_handlers(rt)[IncidentMatched](envelope(matched), matched)
        survivor = await _get(cw, cases[5])
        assert survivor["status"] == "new" and survivor["worker_id"] == "w-chain"
        assert _kinds(survivor).count("worker_matched") == 1
        assert "worker_matched" not in _kinds(await _get(cw, cases[0]))

        # Case 6 was suggested the first report: confirming it merges the open survivor into case 6.
        await merge.confirm(rt, cases[6], first, actor="officer-ani", reason="same")
        last = await _get(cw, cases[6])
        assert first in last["incident_ids"] and last["merged_from"] == [cases[5]]
        assert (await _get(cw, cases[5]))["merged_into"] == cases[6]
        held = await placement.cases_holding(rt, [first])
        assert placement.live_holder(held)["_id"] == cases[6]  # type: ignore[index]

        # Undo: not from the middle of the chain (case 1 went on into case 2: its incidents too),
        # from its end, one merge at a time; each gives back what the merge moved.
        undo = await cw.post(f"/v1/cases/{cases[0]}/unmerge", json={"reason": "x"}, headers=SUPERVISOR)
        assert undo.status_code == 409 and f"unmerge {cases[1]} first" in undo.text
        undo = await cw.post(f"/v1/cases/{cases[5]}/unmerge", json={"reason": "x"}, headers=SUPERVISOR)
        assert undo.status_code == 200, undo.text
        assert (await _get(cw, cases[6]))["incident_ids"] == [reports[6].incident_id]
        assert first in (await _get(cw, cases[5]))["incident_ids"]


async def test_a_merge_cut_between_its_writes_shows_both_cases_and_a_retry_completes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The survivor takes the incidents, then the process dies before the absorbed case is closed:
    the incident is listed in both cases (never in neither), and the same confirmation again
    closes the absorbed case, merging nothing twice."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        earlier = incident(worker_key=f"unidentified-{uuid.uuid4().hex}")
        later = incident(
            worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=[earlier.incident_id]
        )
        absorbed = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=earlier)
        survivor = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=later)

        async def dies(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the process died here")

        monkeypatch.setattr(merge, "_close_absorbed", dies)
        with pytest.raises(RuntimeError):
            await merge.confirm(rt, survivor, earlier.incident_id, actor="officer-ani", reason="same")
        monkeypatch.undo()
        listed = await cw.get("/v1/cases", params={"incident_id": earlier.incident_id}, headers=OFFICER)
        assert {c["case_id"]: c["status"] for c in listed.json()} == {absorbed: "new", survivor: "new"}

        await merge.confirm(rt, survivor, earlier.incident_id, actor="officer-ani", reason="retry")
        closed, kept = await _get(cw, absorbed), await _get(cw, survivor)
        assert (closed["status"], closed["merged_into"]) == ("closed", survivor)
        assert _kinds(kept).count("merged_from") == 1 and kept["merged_from"] == [absorbed]


async def _mutual(rt: Any) -> tuple[str, str, str, str]:
    """Two open cases suggesting each other's incident: (case a, its incident, case b, its incident)."""
    ia = uuid.uuid4().hex
    ib = incident(worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=[ia])
    first = incident(
        incident_id=ia, worker_key=f"unidentified-{uuid.uuid4().hex}", suggested_incident_ids=[ib.incident_id]
    )
    a = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=first)
    b = await placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=ib)
    return a, ia, b, ib.incident_id


async def _open_holders(cw: httpx.AsyncClient, incident_id: str) -> list[str]:
    listed = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
    return [c["case_id"] for c in listed.json() if c["status"] != "closed"]


async def _confirmed_from_both_sides(
    rt: Any,
    monkeypatch: pytest.MonkeyPatch,
    pair: tuple[str, str, str, str],
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[Any], list[str]]:
    """Confirm the pair's link from both sides at once, both survivors written before either
    close (`meanwhile` runs then); the two outcomes, and the absorbed ids the closes were given."""
    a, ia, b, ib = pair
    close = merge._close_absorbed
    arrived: list[str] = []
    both_took = asyncio.Event()

    async def after_both_took(*args: Any, **kwargs: Any) -> Any:
        arrived.append(args[2])
        if len(arrived) == 2:
            if meanwhile is not None:
                await meanwhile()
            both_took.set()
        await asyncio.wait_for(both_took.wait(), 10)
        return await close(*args, **kwargs)

    monkeypatch.setattr(merge, "_close_absorbed", after_both_took)
    outcomes = await asyncio.gather(
        merge.confirm(rt, a, ib, actor="officer-ani", reason="same person"),
        merge.confirm(rt, b, ia, actor="officer-budi", reason="same person"),
        return_exceptions=True,
    )
    monkeypatch.undo()
    return outcomes, arrived


async def test_two_officers_confirming_one_link_from_both_sides_at_once_leave_one_open_case(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both survivors take the other's incidents before either absorbed case is closed: closing
    both would leave every incident in closed cases alone. One case survives with all of them,
    the other is closed into it, and the second confirmation is refused."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        a, ia, b, ib = pair = await _mutual(rt)
        outcomes, arrived = await _confirmed_from_both_sides(rt, monkeypatch, pair)
        assert sorted(arrived[:2]) == sorted([a, b])  # both survivors were written before any close
        keep, gone = sorted([a, b])
        refused = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(refused) == 1 and "at the same time" in str(refused[0]), outcomes
        for inc in (ia, ib):
            assert await _open_holders(cw, inc) == [keep]
        closed = await _get(cw, gone)
        assert (closed["status"], closed["merged_into"]) == ("closed", keep)
        with pytest.raises(Conflict, match="cannot be unmerged"):  # it would take keep's own incidents
            await merge.unmerge(rt, gone, actor="supervisor-sri", reason="undo")


async def test_a_crossed_pair_whose_loser_took_a_report_meanwhile_is_finished_from_either_side(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Confirmed from both sides at once, and a report joins the case that is to be closed before
    either close: the surviving case takes that report too before the other is closed into it."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        a, ia, b, ib = pair = await _mutual(rt)
        keep, gone = sorted([a, b])
        late = uuid.uuid4().hex

        async def joined() -> None:
            await store.note_join(rt.db, late, gone)  # as a report's join does (placement)
            assert await store.update(rt.db, {"_id": gone}, {"$addToSet": {"incident_ids": late}})

        outcomes, _ = await _confirmed_from_both_sides(rt, monkeypatch, pair, joined)
        assert any(isinstance(o, Conflict) for o in outcomes), outcomes
        assert not any(isinstance(o, Exception) and not isinstance(o, Conflict) for o in outcomes), outcomes
        for inc in (ia, ib, late):
            assert await _open_holders(cw, inc) == [keep]
        assert (await _get(cw, gone))["merged_into"] == keep


async def test_the_same_confirmation_twice_at_once_merges_once(settings: Settings) -> None:
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        absorbed, ia, survivor, _ = await _mutual(rt)
        await asyncio.gather(
            *(merge.confirm(rt, survivor, ia, actor="officer-ani", reason="same person") for _ in range(2))
        )
        kept = await _get(cw, survivor)
        assert _kinds(kept).count("merged_from") == 1 and kept["merged_from"] == [absorbed]
        assert (await _get(cw, absorbed))["merged_into"] == survivor


async def test_an_unmerge_cut_between_its_writes_is_completed_by_its_retry_and_no_merge_meanwhile(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The absorbed case is reopened, then the process dies before the survivor gives its
    incidents back: the confirmation repeated meanwhile must not close it again (its incidents
    would then be in no open case once the survivor gives them back), and the unmerge again
    completes."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        absorbed, ia, survivor, _ = await _mutual(rt)
        await merge.confirm(rt, survivor, ia, actor="officer-ani", reason="same person")
        change = merge.change

        async def dies_at_the_survivor(rt_: Any, case_id: str, *args: Any, **kwargs: Any) -> Any:
            if case_id == survivor:
                raise RuntimeError("the process died here")
            return await change(rt_, case_id, *args, **kwargs)

        monkeypatch.setattr(merge, "change", dies_at_the_survivor)
        with pytest.raises(RuntimeError):
            await merge.unmerge(rt, absorbed, actor="supervisor-sri", reason="different people")
        monkeypatch.undo()
        assert (await _get(cw, absorbed))["status"] == "new"
        with pytest.raises(Conflict, match="being unmerged"):
            await merge.confirm(rt, survivor, ia, actor="officer-ani", reason="same person")

        await merge.unmerge(rt, absorbed, actor="supervisor-sri", reason="different people")
        assert await _open_holders(cw, ia) == [absorbed]
        assert absorbed not in (await _get(cw, survivor)).get("merged_from", [])
        raw = await store.get_raw(rt.db, absorbed)
        assert raw is not None and merge.UNMERGING not in raw


async def test_an_incident_that_joins_the_absorbed_case_during_a_merge_is_moved_by_confirming_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report joins the absorbed case after the survivor took its incidents and before it is
    closed: the close is refused rather than leave that report in a closed case alone, and the
    same confirmation again moves it to the survivor and closes the absorbed case."""
    clock = ManualClock(NOW)
    app = casework_app(settings, clock)
    async with running(app) as cw:
        rt = app.state.runtime
        absorbed, ia, survivor, _ = await _mutual(rt)
        late = uuid.uuid4().hex
        close = merge._close_absorbed

        async def joined_meanwhile(*args: Any, **kwargs: Any) -> Any:
            await store.note_join(rt.db, late, absorbed)  # as a report's join does (placement)
            joined = await store.update(rt.db, {"_id": absorbed}, {"$addToSet": {"incident_ids": late}})
            assert joined is not None
            return await close(*args, **kwargs)

        monkeypatch.setattr(merge, "_close_absorbed", joined_meanwhile)
        with pytest.raises(Conflict, match="confirm again"):
            await merge.confirm(rt, survivor, ia, actor="officer-ani", reason="same person")
        monkeypatch.undo()
        assert await _open_holders(cw, late) == [absorbed]  # held, never in a closed case alone

        await merge.confirm(rt, survivor, ia, actor="officer-ani", reason="same person")
        for inc in (ia, late):
            assert await _open_holders(cw, inc) == [survivor]
        assert (await _get(cw, absorbed))["merged_into"] == survivor
        assert _kinds(await _get(cw, survivor)).count("merged_from") == 2  # the first take, then the late one
