"""The workflow plan files: validated by pydantic models, refused naming file, step and field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.repatriation import commands, plans
from services.repatriation.evacuation import WORKERS_LISTED
from services.repatriation.plans import PlanError
from services.repatriation.steps import WorkflowRequest
from shared.events.repatriation import RepatriationKind

GOOD = """
kind: {kind}
steps:
  - {{name: requested, owner: desk, due: 0h}}
  - {{name: completed, owner: system, due: 0h}}
"""


def _folder(tmp_path: Path, bad: str) -> Path:
    for kind in ("living", "remains"):
        (tmp_path / f"{kind}.yaml").write_text(GOOD.format(kind=kind))
    (tmp_path / "evacuation.yaml").write_text(bad)
    return tmp_path


def test_the_shipped_plans_load() -> None:
    loaded = plans.load()
    assert set(loaded) == set(RepatriationKind)
    assert loaded[RepatriationKind.LIVING].step("travel_document").due == timedelta(hours=72)  # type: ignore[union-attr]
    assert all(p.final.owner == "system" for p in loaded.values())


def test_a_bad_plan_file_names_the_file_the_step_and_the_field(tmp_path: Path) -> None:
    bad = """
kind: evacuation
steps:
  - {name: requested, owner: desk, due: 0h}
  - {name: workers_identified, owner: nobody, due: soon}
  - {name: completed, owner: system, due: 0h}
"""
    with pytest.raises(PlanError) as err:
        plans.load_folder(_folder(tmp_path, bad))
    found = {(e["file"], e["entry"], e["field"]) for e in err.value.errors}
    assert found == {
        ("evacuation.yaml", "step workers_identified", "owner"),
        ("evacuation.yaml", "step workers_identified", "due"),
    }
    assert "evacuation.yaml: step workers_identified: due: " in str(err.value)
    assert "a duration like" in str(err.value)


@pytest.mark.parametrize(
    ("bad", "entry", "field", "reason"),
    [
        (
            "kind: evacuation\n"
            "steps: [{name: a, owner: desk, requires: {x: number}}, {name: z, owner: system}]",
            "step a",
            "requires.x",
            "",
        ),
        (
            "kind: evacuation\nsteps: [{name: a, owner: desk, colour: red}, {name: z, owner: system}]",
            "step a",
            "colour",
            "Extra inputs",
        ),
        ("kind: evacuation\nsteps: [{owner: desk}, {name: z, owner: system}]", "step #1", "name", "required"),
        ("kind: evacuation\nsteps: [{name: a, owner: desk}]", "(plan)", "-", "its owner must be system"),
        (
            "kind: evacuation\nsteps: [{name: a, owner: desk}, {name: a, owner: system}]",
            "(plan)",
            "-",
            "unique",
        ),
        (
            "kind: evacuation\npoint_of_no_return: b\n"
            "steps: [{name: a, owner: desk}, {name: z, owner: system}]",
            "(plan)",
            "-",
            "is not a step",
        ),
        ("kind: evacuation\nsteps: [a: [", "(file)", "-", "not valid YAML"),
    ],
)
def test_each_problem_is_named(tmp_path: Path, bad: str, entry: str, field: str, reason: str) -> None:
    with pytest.raises(PlanError) as err:
        plans.load_folder(_folder(tmp_path, bad))
    named = [e for e in err.value.errors if e["field"].startswith(field)]
    assert named, err.value.errors
    assert all((e["file"], e["entry"]) == ("evacuation.yaml", entry) for e in named)
    assert any(reason in e["reason"] for e in named)


def test_a_missing_kind_is_named(tmp_path: Path) -> None:
    (tmp_path / "living.yaml").write_text(GOOD.format(kind="living"))
    with pytest.raises(PlanError, match="no plan for evacuation, remains"):
        plans.load_folder(tmp_path)


def test_a_refusal_is_data_of_the_plan() -> None:
    plan = plans.parse_plan(
        {
            "kind": "living",
            "steps": [
                {"name": "requested", "owner": "desk"},
                {
                    "name": "papers",
                    "owner": "mission",
                    "requires": {"document": ["passport", "splp"]},
                    "refuse": [
                        {
                            "facts": {"passport_missing": True},
                            "data": {"document": "passport"},
                            "reason": "SPLP",
                        }
                    ],
                },
                {"name": "done", "owner": "system"},
            ],
        }
    )
    papers = plan.step("papers")
    assert papers is not None
    refused = commands.validate_completion(papers, {"passport_missing": True}, [], {"document": "passport"})
    assert refused == [{"field": "data.document", "reason": "SPLP"}]
    assert (
        commands.validate_completion(papers, {"passport_missing": False}, [], {"document": "passport"}) == []
    )
    assert commands.validate_completion(papers, {}, [], {"document": "passport"}) == []
    assert commands.validate_completion(papers, {"passport_missing": True}, [], {"document": "splp"}) == []


def test_the_fan_out_completes_the_step_its_plan_waits_on() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    plan = plans.load()[RepatriationKind.EVACUATION]
    request = WorkflowRequest(request_id="e1", requested_by="desk", reason="war", country="LB")
    wf, _ = commands.start(plan, request, id="e1", actor="officer-ani", now=now)
    assert wf.current is not None and wf.current.name == "workers_identified"
    wf, changes = commands.on_event(plan, wf, event=WORKERS_LISTED, actor="system", now=now, evidence=["9"])
    assert (changes[0].step, changes[0].status) == ("workers_identified", "done")
    assert wf.current is not None and wf.current.name == "workers_located"
