"""How decisions become events, timeline entries and live keys (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.repatriation import commands, plans, service, steps, store
from shared.events.repatriation import RepatriationKind, StepChanged, WorkflowChanged

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _start(kind: RepatriationKind, **kw):  # type: ignore[no-untyped-def]
    request = steps.WorkflowRequest(request_id="q1", requested_by="rule", reason="r", country="MY", **kw)
    return commands.start(plans.load()[kind], request, id="r1", actor="rule:q1", now=T0)


def test_a_start_is_told_as_workflow_started_then_step_events_with_deadline() -> None:
    wf, changes = _start(RepatriationKind.LIVING, case_id="c1", home_province="DKI Jakarta")
    events = service.events_for(wf, changes)
    assert isinstance(events[0], WorkflowChanged) and events[0].status == "started"
    assert events[0].home_province == "DKI Jakarta"
    active = events[-1]
    assert isinstance(active, StepChanged)
    assert (active.step, active.status, active.owner) == ("travel_document", "active", "mission")
    assert active.due_at == T0 + timedelta(hours=72) and active.attempt == 1
    timeline = service.timeline_for(changes)
    assert [t["status"] for t in timeline] == ["started", "done", "active"]
    assert "due_at" in timeline[-1] and "due_at" not in timeline[0]


def test_live_keys() -> None:
    wf, _ = _start(RepatriationKind.LIVING, case_id="c1")
    assert store.live_key(wf) == "c1:living"
    evac, _ = _start(RepatriationKind.EVACUATION, region="middle_east")
    assert store.live_key(evac) == "evacuation:MY:middle_east"
    lone, _ = _start(RepatriationKind.REMAINS, worker_id="w-1")
    assert store.live_key(lone) == "worker:w-1:remains"
    nobody, _ = _start(RepatriationKind.REMAINS)
    assert store.live_key(nobody) is None


def test_workflow_id_is_derived_from_the_request() -> None:
    assert service.workflow_id_for("q1") == service.workflow_id_for("q1")
    assert service.workflow_id_for("q1") != service.workflow_id_for("q2")


def test_evacuation_area() -> None:
    assert service.countries_of("my", None) == ["MY"]
    gulf = service.countries_of("SA", "middle_east")
    assert "SA" in gulf and "AE" in gulf and "MY" not in gulf
    assert service.countries_of("SA", "Riyadh province") == ["SA"]


def test_a_document_round_trips() -> None:
    wf, _ = _start(RepatriationKind.LIVING, case_id="c1")
    doc = store.to_doc(wf) | {"live_key": "c1:living", "timeline": [], "_outbox": []}
    assert store.from_doc(doc) == wf
