"""casework's domain rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.casework import domain, queues
from services.casework.domain import Action, Family
from services.casework.queues import QueueKind
from shared.events.casework import CaseStatus as S
from shared.vocab import Category, Severity

# Every allowed (current, action) -> next; everything else is refused.
ALLOWED = {
    (S.NEW, Action.TRIAGE): S.TRIAGED,
    (S.NEW, Action.CLAIM): S.ASSIGNED,
    (S.TRIAGED, Action.CLAIM): S.ASSIGNED,
    (S.ASSIGNED, Action.ACKNOWLEDGE): S.IN_PROGRESS,
    (S.ASSIGNED, Action.RELEASE): S.NEW,
    (S.NEW, Action.REASSIGN): S.ASSIGNED,
    (S.TRIAGED, Action.REASSIGN): S.ASSIGNED,
    (S.ASSIGNED, Action.REASSIGN): S.ASSIGNED,
    (S.IN_PROGRESS, Action.REASSIGN): S.ASSIGNED,
    (S.AWAITING_REPATRIATION, Action.REASSIGN): S.ASSIGNED,
    (S.IN_PROGRESS, Action.AWAIT_REPATRIATION): S.AWAITING_REPATRIATION,
    (S.IN_PROGRESS, Action.RESOLVE): S.RESOLVED,
    (S.AWAITING_REPATRIATION, Action.RESOLVE): S.RESOLVED,
    (S.RESOLVED, Action.CLOSE): S.CLOSED,
    (S.RESOLVED, Action.REOPEN): S.TRIAGED,
    (S.CLOSED, Action.REOPEN): S.TRIAGED,
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("action", list(Action))
def test_transition_table(current: S, action: Action) -> None:
    assert domain.transition(current, action) == ALLOWED.get((current, action))


def test_a_released_claim_returns_to_triaged_when_it_was_triaged() -> None:
    assert domain.transition(S.ASSIGNED, Action.RELEASE, triaged=True) == S.TRIAGED


def test_roles_per_action() -> None:
    assert domain.allowed(Action.CLAIM, {"officer"})
    assert not domain.allowed(Action.CLOSE, {"officer"})
    assert domain.allowed(Action.CLOSE, {"supervisor"})
    assert not domain.allowed(Action.TRIAGE, {"auditor"})
    assert not domain.allowed(Action.REASSIGN, {"administrator"})


def test_families_cover_every_category() -> None:
    assert set(domain.FAMILY_OF) == set(Category)
    assert domain.family_of("sexual_abuse") == domain.family_of("physical_abuse") == Family.ABUSE
    assert domain.family_of("unpaid_wages") == domain.family_of("contract_mismatch") == Family.WAGES_CONTRACT
    assert domain.open_key("w1", "unpaid_wages") == domain.open_key("w1", "overcharged_fees")
    assert domain.open_key("w1", "unpaid_wages") != domain.open_key("w1", "illness")


def test_priority_rises_with_severity_category_and_vulnerability() -> None:
    base = domain.priority(severity="medium", category="unpaid_wages", non_procedural=False)
    assert domain.priority(severity="high", category="unpaid_wages", non_procedural=False) > base
    assert domain.priority(severity="medium", category="trafficking", non_procedural=False) == base + 3
    assert domain.priority(severity="medium", category="death", non_procedural=False) == base + 3
    assert domain.priority(severity="medium", category="unpaid_wages", non_procedural=True) == base + 1
    assert (
        domain.priority(severity="critical", category="trafficking", non_procedural=True, people_affected=9)
        == 10
    )


def test_group_cases() -> None:
    assert domain.is_group("evacuation", 1)
    assert domain.is_group("illness", 12)
    assert not domain.is_group("illness", 1)


def test_queues_are_data_and_cover_every_region_and_kind() -> None:
    desk_queues = queues.load_queues()
    assert desk_queues.queue_for(country="KR", category="unpaid_wages") == "east_asia-general"
    assert desk_queues.queue_for(country="SA", category="trafficking") == "middle_east-trafficking"
    assert desk_queues.queue_for(country="MY", category="death") == "asean-death"
    assert desk_queues.queue_for(country="US", category="illness") == "other-general"
    assert queues.kind_of("trafficking") == QueueKind.TRAFFICKING
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert desk_queues.due_at(opened_at=t0, severity=Severity.CRITICAL) == t0 + timedelta(hours=1)
    assert desk_queues.due_at(opened_at=t0, severity=Severity.LOW) == t0 + timedelta(days=3)


def test_queue_definitions_must_cover_each_pair_once() -> None:
    raw = {
        "claim_lease_minutes": 30,
        "acknowledge_within_minutes": {"low": 1, "medium": 1, "high": 1, "critical": 1},
        "queues": [{"id": "x", "region": "asean", "kind": "general", "title": "x"}],
    }
    with pytest.raises(ValueError):
        queues.parse_queues(raw)


def test_escalation_never_goes_down_and_stops_at_three() -> None:
    assert domain.escalation_level(0, None) == 1
    assert domain.escalation_level(2, 1) == 2
    assert domain.escalation_level(3, None) == 3
    assert domain.escalation_level(1, 3) == 3


def test_available_actions_follow_the_lifecycle_table_and_who_holds_the_case() -> None:
    from services.casework.domain import available_actions

    officer = frozenset({"officer"})
    new = available_actions(status="new", assignee=None, escalation_level=0, actor="a", roles=officer)
    assert new == ["triage", "claim", "notes", "tags", "mission-requests"]
    held = available_actions(status="assigned", assignee="a", escalation_level=0, actor="a", roles=officer)
    assert held[:2] == ["acknowledge", "release"]
    other = available_actions(status="assigned", assignee="a", escalation_level=0, actor="b", roles=officer)
    assert "acknowledge" not in other and "release" not in other
    sup = frozenset({"supervisor"})
    top = available_actions(status="in_progress", assignee="a", escalation_level=3, actor="s", roles=sup)
    assert "escalate" not in top and "reassign" in top and "resolve" in top
    assert available_actions(status="resolved", assignee="a", escalation_level=0, actor="s", roles=sup)[
        :2
    ] == [
        "close",
        "reopen",
    ]
    audit = frozenset({"auditor"})
    assert available_actions(status="new", assignee=None, escalation_level=0, actor="x", roles=audit) == []


def _queues_yaml(queue_lines: str, lease: str = "30") -> str:
    return (
        f"claim_lease_minutes: {lease}\n"
        "acknowledge_within_minutes: {low: 1, medium: 1, high: 1, critical: 1}\n"
        f"queues:\n{queue_lines}"
    )


def test_a_bad_queues_file_is_refused_naming_file_entry_and_field(tmp_path: Path) -> None:
    good = queues.QUEUES_FILE.read_text()
    bad = good.replace("{id: europe-death, region: europe,", "{id: europe-death, region: mars,")
    assert bad != good
    path = tmp_path / "queues.yaml"
    path.write_text(bad)
    with pytest.raises(queues.InvalidQueues) as err:
        queues.load_queues(str(path))
    assert err.value.file == str(path)
    assert [(e.entry, e.field) for e in err.value.errors] == [("europe-death", "region")]
    assert str(path) in str(err.value) and "europe-death: region:" in str(err.value)


def test_queues_file_errors_name_entries_without_id_settings_and_coverage(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(
        _queues_yaml(
            "  - {id: a, region: asean, kind: general, title: A}\n  - {region: asean, kind: death}\n",
            lease="soon",
        )
    )
    with pytest.raises(queues.InvalidQueues) as err:
        queues.load_queues(str(path))
    found = {(e.entry, e.field) for e in err.value.errors}
    assert ("(settings)", "claim_lease_minutes") in found
    assert ("queues#2", "id") in found and ("queues#2", "title") in found

    path.write_text(
        _queues_yaml(
            "  - {id: a, region: asean, kind: general, title: A}\n"
            "  - {id: b, region: asean, kind: general, title: B}\n"
        )
    )
    with pytest.raises(queues.InvalidQueues) as err:
        queues.load_queues(str(path))
    found = {(e.entry, e.field) for e in err.value.errors}
    assert ("b", "region") in found  # the second queue of asean/general
    assert ("queues", "(list)") in found  # and the pairs no queue takes


def test_a_claim_lease_in_the_settings_overrides_the_queues_file() -> None:
    from services.casework.queues import claim_lease
    from shared.settings import Settings

    assert claim_lease(Settings()) == timedelta(minutes=30)  # queues.yaml
    assert claim_lease(Settings(claim_lease_minutes=24 * 60)) == timedelta(days=1)
