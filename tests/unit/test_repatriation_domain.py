"""The repatriation state machines and rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.repatriation import authorisation, commands, evacuees, plans, steps
from services.repatriation.commands import Invalid
from services.repatriation.steps import Action, StepStatus, WorkflowRequest, WorkflowStatus
from shared.durations import parse_duration
from shared.errors import Conflict
from shared.events.repatriation import RepatriationKind

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LIVING = plans.load()[RepatriationKind.LIVING]
REMAINS = plans.load()[RepatriationKind.REMAINS]
BOOKING = {"flight": "GA821", "arrival_at": "2026-01-20T14:00:00+07:00", "debarkation_point": "CGK"}


def start(plan=LIVING, **facts):  # type: ignore[no-untyped-def]
    request = WorkflowRequest(
        request_id="q1", requested_by="desk", reason="go home", country="my", case_id="c1", facts=facts
    )
    return commands.start(plan, request, id="r1", actor="officer-ani", now=T0)


def statuses(wf: steps.Workflow) -> dict[str, str]:
    return {s.name: s.status.value for s in wf.steps}


def test_plans_load_and_end_with_completed() -> None:
    for plan in plans.load().values():
        assert plan.steps[-1].name == "completed"
    assert LIVING.step("travel_booked").undo == "booking"  # type: ignore[union-attr]
    assert LIVING.step("travel_document").due == timedelta(hours=72)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("before", "action", "after"),
    [
        (StepStatus.PENDING, Action.ACTIVATE, StepStatus.ACTIVE),
        (StepStatus.ACTIVE, Action.COMPLETE, StepStatus.DONE),
        (StepStatus.ACTIVE, Action.FAIL, StepStatus.FAILED),
        (StepStatus.FAILED, Action.RETRY, StepStatus.ACTIVE),
        (StepStatus.DONE, Action.UNDO, StepStatus.UNDONE),
        (StepStatus.ACTIVE, Action.CANCEL, StepStatus.CANCELLED),
    ],
)
def test_step_moves(before: StepStatus, action: Action, after: StepStatus) -> None:
    assert steps.move(before, action) == after


@pytest.mark.parametrize(
    ("before", "action"),
    [
        (StepStatus.DONE, Action.COMPLETE),
        (StepStatus.PENDING, Action.COMPLETE),
        (StepStatus.ACTIVE, Action.RETRY),
        (StepStatus.SKIPPED, Action.FAIL),
        (StepStatus.CANCELLED, Action.ACTIVATE),
    ],
)
def test_moves_not_in_the_table_conflict(before: StepStatus, action: Action) -> None:
    with pytest.raises(Conflict):
        steps.move(before, action)


def test_start_activates_the_second_step_with_its_deadline() -> None:
    wf, changes = start()
    assert wf.current is not None and wf.current.name == "travel_document"
    assert wf.current.due_at == T0 + timedelta(hours=72)
    assert wf.country == "MY"
    assert [(c.scope, c.status, c.step) for c in changes] == [
        ("workflow", "started", None),
        ("step", "done", "requested"),
        ("step", "active", "travel_document"),
    ]


def test_fit_to_travel_is_skipped_when_not_sick_and_asked_when_sick() -> None:
    wf, _ = start()
    wf, _ = commands.complete(
        LIVING,
        wf,
        step="travel_document",
        actor="kbri",
        now=T0,
        evidence=["P1"],
        data={"document": "passport"},
    )
    wf, changes = commands.complete(
        LIVING,
        wf,
        step="exit_clearance",
        actor="kbri",
        now=T0,
        evidence=["E1"],
        data={"employer_release": True, "wages_settled": True, "immigration": True},
    )
    assert statuses(wf)["fit_to_travel"] == "skipped"
    assert wf.current.name == "funding_approved"  # type: ignore[union-attr]
    assert ("skipped", "fit_to_travel") in [(c.status, c.step) for c in changes]
    sick, _ = start(sick=True)
    sick, _ = commands.complete(
        LIVING, sick, step="travel_document", actor="k", now=T0, evidence=["P"], data={"document": "passport"}
    )
    sick, _ = commands.complete(
        LIVING,
        sick,
        step="exit_clearance",
        actor="k",
        now=T0,
        evidence=["E"],
        data={"employer_release": True, "wages_settled": True, "immigration": True},
    )
    assert sick.current.name == "fit_to_travel"  # type: ignore[union-attr]


def test_completion_needs_evidence_and_data_field_by_field() -> None:
    wf, _ = start(passport_missing=True)
    with pytest.raises(Invalid) as err:
        commands.complete(
            LIVING, wf, step="travel_document", actor="k", now=T0, data={"document": "passport"}
        )
    fields = {e["field"] for e in err.value.errors}
    assert fields == {"evidence", "data.document"}  # and the passport is missing: SPLP needed


def test_only_the_current_step_can_be_completed() -> None:
    wf, _ = start()
    with pytest.raises(Conflict):
        commands.complete(LIVING, wf, step="departed", actor="k", now=T0)


def _to_departed(facts: dict[str, bool] | None = None) -> steps.Workflow:
    wf, _ = start(**(facts or {}))
    wf, _ = commands.complete(
        LIVING, wf, step="travel_document", actor="k", now=T0, evidence=["P"], data={"document": "passport"}
    )
    wf, _ = commands.complete(
        LIVING,
        wf,
        step="exit_clearance",
        actor="k",
        now=T0,
        evidence=["E"],
        data={"employer_release": True, "wages_settled": True, "immigration": True},
    )
    wf, _ = commands.complete(
        LIVING, wf, step="funding_approved", actor="d", now=T0, data={"payer": "state", "recoverable": True}
    )
    wf, _ = commands.complete(
        LIVING, wf, step="travel_booked", actor="k", now=T0, evidence=["B1"], data=BOOKING
    )
    return wf


def test_cancel_releases_booking_and_returns_funding_latest_first() -> None:
    wf = _to_departed()
    assert [e.kind for e in wf.effects if e.released_at is None] == ["funding", "booking"]
    wf, changes = commands.cancel(LIVING, wf, actor="d", reason="worker chose to stay", now=T0)
    undone = [(c.step, c.effect) for c in changes if c.status == "undone"]
    assert undone == [("travel_booked", "booking released"), ("funding_approved", "funding returned")]
    assert wf.status == WorkflowStatus.CANCELLED
    assert all(e.released_at == T0 for e in wf.effects)
    assert statuses(wf)["departed"] == "cancelled"
    assert changes[-1].scope == "workflow" and changes[-1].status == "cancelled"


def test_no_cancel_or_reroute_after_the_point_of_no_return() -> None:
    wf = _to_departed()
    wf, _ = commands.complete(LIVING, wf, step="departed", actor="k", now=T0)
    with pytest.raises(Conflict):
        commands.cancel(LIVING, wf, actor="d", reason="too late", now=T0)
    with pytest.raises(Conflict):
        commands.reroute(LIVING, wf, to_step="travel_booked", actor="d", reason="too late", now=T0)


def test_reroute_back_to_booking_releases_the_old_booking_keeps_the_funding() -> None:
    wf = _to_departed()
    later = T0 + timedelta(hours=5)
    wf, changes = commands.reroute(
        LIVING, wf, to_step="travel_booked", actor="k", reason="flight cancelled", now=later
    )
    assert [(c.scope, c.status, c.step) for c in changes] == [
        ("workflow", "rerouted", None),
        ("step", "undone", "departed"),
        ("step", "undone", "travel_booked"),
        ("step", "active", "travel_booked"),
    ]
    s = wf.step("travel_booked")
    assert s is not None and s.attempts == 2 and s.due_at == later + timedelta(hours=72)
    assert [(e.kind, e.released_at is None) for e in wf.effects] == [("funding", True), ("booking", False)]
    with pytest.raises(Invalid):
        commands.reroute(LIVING, wf, to_step="departed", actor="k", reason="not a target", now=later)


def test_fail_then_retry_gives_a_fresh_deadline() -> None:
    wf, _ = start()
    wf, _ = commands.fail(LIVING, wf, step="travel_document", actor="k", reason="office closed", now=T0)
    assert wf.current.status == StepStatus.FAILED  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        commands.complete(
            LIVING, wf, step="travel_document", actor="k", now=T0, evidence=["x"], data={"document": "splp"}
        )
    later = T0 + timedelta(days=1)
    wf, changes = commands.retry(
        LIVING, wf, step="travel_document", actor="k", reason="open again", now=later
    )
    assert [c.status for c in changes] == ["retried", "active"]
    assert changes[1].due_at == later + timedelta(hours=72) and changes[1].attempt == 2


def test_skip_only_skippable_steps() -> None:
    wf, _ = start()
    with pytest.raises(Conflict):
        commands.skip(LIVING, wf, step="travel_document", actor="d", reason="no", now=T0)


def test_a_full_living_run_completes_and_the_event_completes_arrival() -> None:
    wf = _to_departed()
    wf, _ = commands.complete(LIVING, wf, step="departed", actor="k", now=T0)
    same, nothing = commands.on_event(LIVING, wf, event="something_else", actor="r", now=T0, evidence=[])
    assert nothing == [] and same is wf
    wf, _ = commands.on_event(
        LIVING, wf, event="departure_returned", actor="registry", now=T0, evidence=["d1"]
    )
    assert statuses(wf)["arrived"] == "done"
    wf, _ = commands.skip(LIVING, wf, step="onward_transport", actor="d", reason="family picked up", now=T0)
    wf, _ = commands.complete(
        LIVING,
        wf,
        step="handed_over",
        actor="r",
        now=T0,
        evidence=["BAST-1"],
        data={"received_by": "family", "witness": "Lurah Cakung"},
    )
    wf, changes = commands.complete(LIVING, wf, step="region_notified", actor="cgk", now=T0)
    assert wf.status == WorkflowStatus.COMPLETED
    assert changes[-1].status == "completed"


def test_remains_through_a_hub_has_the_domestic_leg() -> None:
    wf, _ = start(REMAINS, via_hub=True)
    assert wf.current.name == "death_certificate_and_documents"  # type: ignore[union-attr]
    wf, _ = commands.complete(
        REMAINS, wf, step="death_certificate_and_documents", actor="k", now=T0, evidence=["DC"]
    )
    wf, _ = commands.complete(
        REMAINS, wf, step="cargo_booked", actor="k", now=T0, evidence=["AWB"], data=BOOKING
    )
    wf, _ = commands.complete(REMAINS, wf, step="arrived_cargo_terminal", actor="cgk", now=T0)
    assert wf.current.name == "onward_domestic_leg"  # type: ignore[union-attr]


def test_authorisation_by_owner_and_jurisdiction() -> None:
    def why(action: str, owner: str, roles: set[str], countries=(), provinces=(), home="DKI Jakarta"):  # type: ignore[no-untyped-def]
        return authorisation.authorise(
            action,
            owner=owner,
            roles=frozenset(roles),
            countries=frozenset(countries),
            provinces=frozenset(provinces),
            country="MY",
            home_province=home,
        )

    assert why("complete", "mission", {"mission"}, countries={"MY"}) is None
    assert why("complete", "mission", {"mission"}, countries={"KR"}) is not None
    assert why("complete", "mission", {"officer"}) is not None
    assert why("skip", "mission", {"officer"}) is None
    assert why("complete", "region", {"region"}, provinces={"DKI Jakarta"}) is None
    assert why("complete", "region", {"region"}, provinces={"Jawa Barat"}) is not None
    assert why("complete", "debarkation", {"debarkation"}) is None
    assert why("cancel", "system", {"debarkation"}) is not None
    assert why("cancel", "system", {"supervisor"}) is None


def test_step_actions_offered_are_the_ones_the_commands_accept() -> None:
    def offered(wf: steps.Workflow, roles: set[str], countries=(), provinces=()):  # type: ignore[no-untyped-def]
        cur = wf.current
        return authorisation.available_step_actions(
            LIVING,
            status=wf.status.value,
            step=cur.name if cur else None,
            step_status=cur.status.value if cur else None,
            roles=frozenset(roles),
            countries=frozenset(countries),
            provinces=frozenset(provinces),
            country=wf.country,
            home_province="DKI Jakarta",
        )

    wf, _ = start()  # travel_document (mission's, not skippable) is active
    assert offered(wf, {"mission"}, countries={"MY"}) == ["complete", "fail"]
    assert offered(wf, {"mission"}, countries={"KR"}) == []
    assert offered(wf, {"officer"}) == []  # the desk may only skip or retry, and this step is not skippable
    assert offered(wf, {"auditor"}) == []
    wf, _ = commands.fail(LIVING, wf, step="travel_document", actor="kbri", reason="office closed", now=T0)
    assert offered(wf, {"mission"}, countries={"MY"}) == ["retry"]
    assert offered(wf, {"supervisor"}) == ["retry"]
    wf, _ = commands.retry(LIVING, wf, step="travel_document", actor="kbri", reason="open again", now=T0)
    assert offered(wf, {"mission"}, countries={"MY"}) == ["complete", "fail"]
    wf, _ = start(sick=True)
    cleared = {"employer_release": True, "wages_settled": True, "immigration": True}
    for step, evidence, data in (
        ("travel_document", ["SPLP-1"], {"document": "splp"}),
        ("exit_clearance", ["EXIT-1"], cleared),
    ):
        wf, _ = commands.complete(LIVING, wf, step=step, actor="k", now=T0, evidence=evidence, data=data)
    assert wf.current.name == "fit_to_travel"  # type: ignore[union-attr]
    assert offered(wf, {"mission"}, countries={"MY"}) == ["complete", "fail", "skip"]
    assert offered(wf, {"officer"}) == ["skip"]
    wf, _ = commands.cancel(LIVING, wf, actor="officer-ani", reason="stays", now=T0)
    assert offered(wf, {"officer"}) == []


def test_evacuee_moves() -> None:
    E = evacuees.EvacueeStatus
    assert evacuees.evacuee_may_move(E.UNACCOUNTED, E.LOCATED)
    assert evacuees.evacuee_may_move(E.IN_TRANSIT, E.HOME)
    assert not evacuees.evacuee_may_move(E.HOME, E.UNACCOUNTED)
    assert not evacuees.evacuee_may_move(E.UNACCOUNTED, E.IN_TRANSIT)


def test_malformed_plans_are_refused() -> None:
    with pytest.raises(ValueError):
        plans.parse_plan(
            {
                "kind": "living",
                "steps": [{"name": "a", "owner": "nobody"}, {"name": "completed", "owner": "system"}],
            }
        )
    with pytest.raises(ValueError):
        plans.parse_plan({"kind": "living", "steps": [{"name": "a", "owner": "desk"}]})
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_a_home_learnt_late_fills_only_what_the_workflow_does_not_know() -> None:
    wf, _ = start(REMAINS)
    assert wf.home_province is None and wf.worker_id is None
    learnt, changes = commands.learn_home(
        REMAINS,
        wf,
        province="Jawa Barat",
        worker_id="w-1",
        regency="Bandung",
        name="Siti",
        actor="registry",
        source="departure d-1 v2",
        now=T0,
    )
    assert (learnt.home_province, learnt.worker_id, learnt.home_regency) == ("Jawa Barat", "w-1", "Bandung")
    assert [(c.status, c.actor) for c in changes] == [("home_province_set", "registry")]
    assert changes[0].reason == "unknown -> Jawa Barat: learnt from departure d-1 v2"
    # What is known stands: a province the desk set, another worker's departure, nothing to learn.
    for wf_, known in (
        (learnt, {"province": "Bali", "worker_id": "w-1"}),
        (learnt.model_copy(update={"home_province": None}), {"province": "Bali", "worker_id": "w-2"}),
        (wf, {"province": None, "worker_id": "w-1"}),
    ):
        same, none = commands.learn_home(REMAINS, wf_, actor="registry", source="x", now=T0, **known)
        assert same is wf_ and none == []
