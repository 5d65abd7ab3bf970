"""escalation's domain, fast: rule files validated, events evaluated, chains scheduled, dry runs compared."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.escalation import chains, counting, evaluation, ruleset, simulate
from services.escalation.engine import DEFAULT_RULES
from shared.events.escalation import EscalationAction, FlagRequested
from shared.events.repatriation import RepatriationRequested

DEFAULT = DEFAULT_RULES.read_text()
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def ev(name: str, at: datetime, id: str | None = None, **data: object) -> ruleset.Incoming:
    return ruleset.Incoming(id=id or uuid.uuid4().hex, name=name, time=at, data=data)


def opened(case_id: str, at: datetime = T0, **extra: object) -> ruleset.Incoming:
    data: dict[str, object] = {
        "case_id": case_id,
        "country": "MY",
        "severity": "medium",
        "category": "unpaid_wages",
        "non_procedural": False,
        "worker_key": "wk",
    }
    data.update(extra)
    return ev("CaseOpened", at, **data)


def test_default_rules_load_and_cover_the_desk() -> None:
    rules = ruleset.load_rules(DEFAULT)
    ids = {r.id for r in rules.rules}
    assert {
        "critical-ack-1h",
        "high-ack-4h",
        "triage-24h",
        "death-remains",
        "trafficking-opened",
        "non-procedural",
        "agency-pattern-30d",
        "repatriation-step-overdue",
    } <= ids


def test_invalid_file_is_refused_with_rule_field_and_reason() -> None:
    text = """
rules:
  - id: ok-rule
    trigger: {event: CaseOpened}
    actions: [{do: tag, tag: x}]
  - id: bad-one
    trigger: {event: CaseOpened, when: {severity: urgent}}
    actions: [{do: escalate, level: 5}]
  - id: bad-two
    trigger: {event: CaseOpend}
    actions: [{do: tag, tag: x}]
"""
    with pytest.raises(ruleset.InvalidRules) as err:
        ruleset.load_rules(text)
    got = {(e.rule, e.field) for e in err.value.errors}
    assert ("bad-one", "trigger") in got  # severity 'urgent' is not a severity
    assert ("bad-one", "actions.0.level") in got
    assert ("bad-two", "trigger") in got
    assert not any(e.rule == "ok-rule" for e in err.value.errors)
    reasons = " ".join(e.reason for e in err.value.errors)
    assert "one of low, medium, high, critical" in reasons and "CaseOpend" in reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("rules: [", "not valid YAML"),
        ("nothing: here", "list `rules`"),
        (
            "rules:\n - {id: a1, trigger: {event: CaseOpened}, actions: [{do: tag, tag: t}]}\n"
            " - {id: a1, trigger: {event: CaseOpened}, actions: [{do: tag, tag: t}]}",
            "appears twice",
        ),
        (
            "rules:\n - id: a1\n   trigger: {event: CaseOpened}\n   deadline:\n"
            "     until: [{event: CaseAcknowledged}]\n"
            "     stages: [{after: soon, actions: [{do: tag, tag: t}]}]",
            "duration",
        ),
        (
            "rules:\n - id: a1\n   trigger: {event: IncidentAccepted}\n   deadline:\n"
            "     until: [{event: CaseAcknowledged}]\n"
            "     stages: [{after: 1h, actions: [{do: tag, tag: t}]}]",
            "case_id",
        ),
    ],
)
def test_each_kind_of_invalid_file_names_its_problem(text: str, reason: str) -> None:
    with pytest.raises(ruleset.InvalidRules) as err:
        ruleset.load_rules(text)
    assert reason in str(err.value)


def test_durations() -> None:
    assert ruleset.duration_seconds("90s") == 90
    assert ruleset.duration_seconds("4h") == 4 * 3600
    assert ruleset.duration_seconds("30d") == 30 * 86400
    with pytest.raises(ValueError):
        ruleset.duration_seconds("tomorrow")


def test_critical_case_starts_frozen_chains_and_death_acts_at_once() -> None:
    rules = ruleset.load_rules(DEFAULT)
    d = evaluation.evaluate(rules, 1, opened("c1", severity="critical", category="death"))
    assert {s.rule_id for s in d.starts} == {"critical-ack-1h", "triage-24h"}
    critical = next(s for s in d.starts if s.rule_id == "critical-ack-1h")
    assert critical.first_due == T0 + timedelta(hours=1)
    assert critical.subject == "case:c1"
    [death] = [f for f in d.firings if f.rule_id == "death-remains"]
    events = [e.event for e in death.emissions]
    assert isinstance(events[0], RepatriationRequested) and events[0].kind == "remains"
    assert isinstance(events[1], EscalationAction) and events[1].level == 2
    # deterministic ids: the same trigger gives the same action ids
    again = evaluation.evaluate(rules, 1, opened("c1", severity="critical", category="death"))
    assert [e.id for e in again.firings[0].emissions] != []  # other event id, once_per subject:
    assert [e.id for e in again.firings[0].emissions] == [e.id for e in death.emissions]


def test_schedule_flattens_stages_and_bounded_repeats() -> None:
    stages = [
        {"after": 3600, "actions": [{"do": "tag", "tag": "a"}]},
        {"after": 3600, "actions": [{"do": "tag", "tag": "b"}], "repeat": {"every": 7200, "times": 2}},
    ]
    slots = chains.schedule(stages)
    assert [(s.label, s.offset) for s in slots] == [
        ("s0r0", 3600),
        ("s1r0", 7200),
        ("s1r1", 14400),
        ("s1r2", 21600),
    ]


def test_step_overdue_chain_starts_at_the_steps_deadline_and_done_ends_it() -> None:
    rules = ruleset.load_rules(DEFAULT)
    due = T0 + timedelta(days=2)
    step = ev(
        "StepChanged",
        T0,
        repatriation_id="r1",
        case_id="c1",
        kind="living",
        step="travel_document",
        status="active",
        owner="mission",
        due_at=due.isoformat(),
        actor="system",
    )
    [start] = evaluation.evaluate(rules, 1, step).starts
    assert start.subject == "repatriation_step:r1/travel_document" and start.first_due == due
    done = ev("StepChanged", T0, repatriation_id="r1", step="travel_document", status="done")
    other = ev("StepChanged", T0, repatriation_id="r1", step="funding", status="done")
    assert chains.ends_chain(start.until, done)
    assert evaluation.subject_key("repatriation_step", other.data) != start.subject


def test_counting_rule_fires_once_per_window_and_key() -> None:
    rules = ruleset.load_rules(DEFAULT)
    start = T0 + timedelta(days=3)

    def incident(agency: str, days: int) -> ruleset.Incoming:
        return ev(
            "IncidentAccepted",
            start + timedelta(days=days),
            incident_id=uuid.uuid4().hex,
            agency_id=agency,
            country="SA",
            category="unpaid_wages",
        )

    stream = [incident("p3mi-a", d) for d in (0, 5, 10, 15)] + [incident("p3mi-b", d) for d in (0, 1)]
    fired = simulate.run(rules, stream)
    flags = [e.event for f in fired for e in f.emissions if isinstance(e.event, FlagRequested)]
    assert [(f.subject_id, f.subject_kind) for f in flags] == [("p3mi-a", "agency")]


def test_simulated_chain_is_cancelled_by_acknowledgement_and_fires_otherwise() -> None:
    rules = ruleset.load_rules(DEFAULT)
    ack = ev("CaseAcknowledged", T0 + timedelta(minutes=59), case_id="c1", status="in_progress")
    stream = [opened("c1", severity="critical"), ack, opened("c2", severity="critical")]
    fired = simulate.run(rules, stream, until=T0 + timedelta(hours=1, minutes=30))
    assert [(f.rule_id, f.subject, f.stage) for f in fired] == [("critical-ack-1h", "case:c2", "s0r0")]
    assert fired[0].at == T0 + timedelta(hours=1)


def test_dry_run_reports_the_difference_of_a_changed_rule() -> None:
    live = ruleset.load_rules(DEFAULT)
    candidate = ruleset.load_rules(
        DEFAULT.replace(
            "after: 1h\n          actions:\n            - {do: escalate, level: 1",
            "after: 30m\n          actions:\n            - {do: escalate, level: 1",
            1,
        )
    )
    stream = [
        opened("c1", severity="critical"),
        ev("CaseAcknowledged", T0 + timedelta(minutes=45), case_id="c1"),
    ]
    diff = simulate.compare(simulate.run(candidate, stream), simulate.run(live, stream))
    assert [(f["rule_id"], f["subject"], f["stage"]) for f in diff["only_candidate"]] == [
        ("critical-ack-1h", "case:c1", "s0r0")
    ]
    assert diff["only_live"] == [] and diff["changed"] == []


def test_counting_windows_slide_across_bucket_boundaries_and_count_each_incident_once() -> None:
    rules = ruleset.load_rules(DEFAULT)
    day = datetime(2026, 1, 1, 12, tzinfo=UTC)  # a 30-day bucket boundary falls on 2026-01-07

    def incident(agency: str, days: int) -> ruleset.Incoming:
        return ev(
            "IncidentAccepted",
            day + timedelta(days=days),
            incident_id=f"{agency}-{days}",
            agency_id=agency,
            country="SA",
            category="unpaid_wages",
        )

    stream = [incident("a", d) for d in (0, 9, 19, 20, 21, 22)] + [incident("b", d) for d in (0, 19, 35)]
    fired = simulate.run(rules, stream)
    flags = [f for f in fired if f.rule_id == "agency-pattern-30d"]
    # a: days 0, 9, 19 fire (across the boundary); 20, 21, 22 are three more and fire again
    assert [f.subject for f in flags] == ["agency-pattern-30d:a", "agency-pattern-30d:a"]
    assert (
        counting.pick_window(
            [("x", day), ("y", day + timedelta(days=30))], set(), at_least=2, within=30 * 86400
        )
        is None
    )


def test_the_rule_set_in_force_is_the_last_loaded_at_or_before_the_event() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    loaded = [(2, t + timedelta(days=10)), (1, t), (3, t + timedelta(days=20))]
    assert evaluation.in_force(loaded, t - timedelta(days=1)) == 1  # older than any: the first
    assert evaluation.in_force(loaded, t) == 1
    assert evaluation.in_force(loaded, t + timedelta(days=10) - timedelta(microseconds=1)) == 1
    assert evaluation.in_force(loaded, t + timedelta(days=10)) == 2
    assert evaluation.in_force(loaded, t + timedelta(days=400)) == 3
    with pytest.raises(ValueError):
        evaluation.in_force([], t)
