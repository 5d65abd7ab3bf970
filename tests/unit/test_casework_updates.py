"""casework's case updates, without I/O: every change carries its timeline entry and its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.casework import changes, desk, domain
from services.casework.domain import Action
from shared.errors import Conflict
from shared.events.casework import CaseStatus as S
from shared.vocab import Category

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OFFICER = frozenset({"officer"})
SUPERVISOR = frozenset({"supervisor"})


def _case(status: S, **over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "_id": "c1",
        "status": status.value,
        "assignee": "officer-ani",
        "lease_until": NOW + timedelta(minutes=10),
        "open_key": "w|wages_contract",
        "join_key": "w|wages_contract",
        "priority": 4,
        "escalation_level": 0,
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("action", list(Action))
def test_every_allowed_desk_action_writes_status_stamp_timeline_and_one_event(
    current: S, action: Action
) -> None:
    doc = _case(current)
    roles = SUPERVISOR | OFFICER
    allowed = domain.transition(current, action) is not None
    if not allowed:
        with pytest.raises(Conflict) as err:
            desk.desk_update(doc, action, actor="officer-ani", roles=roles, now=NOW, assignee="officer-budi")
        assert err.value.status == current.value
        return
    case_update = desk.desk_update(
        doc,
        action,
        actor="officer-ani",
        roles=roles,
        now=NOW,
        reason="r",
        resolution="x",
        assignee="officer-budi",
    )
    new = case_update.update["$set"]["status"]
    assert new == domain.transition(current, action, triaged=False).value  # type: ignore[union-attr]
    [entry] = case_update.update["$push"]["timeline"]["$each"]
    assert entry["at"] == NOW and entry["by"] == "officer-ani" and entry["previous"] == current.value
    assert case_update.events and case_update.events[-1].status == new  # type: ignore[attr-defined]
    if S(new) in domain.STAMP:
        assert case_update.update["$set"][domain.STAMP[S(new)]] == NOW


def test_only_the_claim_holder_acknowledges_and_not_after_the_lease() -> None:
    with pytest.raises(changes.Forbidden):
        desk.desk_update(_case(S.ASSIGNED), Action.ACKNOWLEDGE, actor="officer-budi", roles=OFFICER, now=NOW)
    late = _case(S.ASSIGNED, lease_until=NOW - timedelta(seconds=1))
    with pytest.raises(Conflict):
        desk.desk_update(late, Action.ACKNOWLEDGE, actor="officer-ani", roles=OFFICER, now=NOW)


def test_officers_cannot_close_and_supervisors_can() -> None:
    with pytest.raises(changes.Forbidden):
        desk.desk_update(_case(S.RESOLVED), Action.CLOSE, actor="officer-ani", roles=OFFICER, now=NOW)
    case_update = desk.desk_update(
        _case(S.RESOLVED), Action.CLOSE, actor="supervisor-dewi", roles=SUPERVISOR, now=NOW
    )
    assert case_update.update["$set"]["open_key"] == "closed|c1"


def test_escalation_only_goes_up_and_guards_the_level_it_read() -> None:
    case_update = desk.escalate_update(_case(S.IN_PROGRESS), actor="rule:x", now=NOW, level=2, reason="r")
    assert case_update is not None
    assert case_update.update["$set"]["escalation_level"] == 2 and case_update.filter == {
        "escalation_level": 0
    }
    assert (
        desk.escalate_update(
            _case(S.IN_PROGRESS, escalation_level=3), actor="x", now=NOW, level=2, reason="r"
        )
        is None
    )


def test_notes_priority_and_tags_are_on_the_timeline() -> None:
    for case_update in (
        desk.note_update(_case(S.NEW), actor="a", now=NOW, text="t"),
        desk.priority_update(_case(S.NEW), actor="a", now=NOW, priority=9, reason="r"),
        desk.tag_update(_case(S.NEW), actor="a", now=NOW, tag="t", reason=None),
    ):
        assert len(case_update.update["$push"]["timeline"]["$each"]) == 1
    with pytest.raises(Conflict):
        desk.priority_update(_case(S.CLOSED), actor="a", now=NOW, priority=9, reason="r")


def test_triage_into_another_category_moves_the_case_to_its_family_queue_and_key() -> None:
    doc = _case(S.NEW, category="lost_contact", country="KR", severity="high", worker_id="w")
    doc.update(open_key="w|welfare", join_key="w|welfare")
    case_update = desk.triage_update(
        doc, actor="officer-ani", now=NOW, reason="hospital", category=Category.DEATH
    )
    set_ = case_update.update["$set"]
    assert (set_["category"], set_["family"], set_["queue"]) == ("death", "death", "east_asia-death")
    assert set_["open_key"] == set_["join_key"] == "w|death" and set_["priority"] > 4
    (ev,) = case_update.events
    assert (ev.category, ev.previous_category, ev.worker_id) == (Category.DEATH, Category.LOST_CONTACT, "w")
    same = desk.triage_update(doc, actor="officer-ani", now=NOW, reason=None, category=Category.LOST_CONTACT)
    assert "category" not in same.update["$set"] and same.events[0].previous_category is None
