"""Who may do what on a workflow: the step's owner, the desk, the host country's mission, the region.

Plain Python, no I/O. The views check a caller with `authorise` before a command, and tell the
caller what it may do now with `available_step_actions` and `workflow_actions` (the same checks).
"""

from __future__ import annotations

from typing import Any

from services.repatriation.plans import Plan
from services.repatriation.steps import StepStatus, WorkflowStatus

DESK_ROLES = frozenset({"officer", "supervisor"})


def authorise(
    action: str,
    *,
    owner: str,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> str | None:
    """Why the caller may not take this action on a step owned by `owner`, or None when they may.

    complete and fail belong to the step's owner; skip and retry to the owner or the desk;
    cancel and re-route to the desk or the mission of the host country.
    """
    desk = bool(roles & DESK_ROLES)
    mission_here = "mission" in roles and country.upper() in countries
    if "mission" in roles and not mission_here:
        return f"the workflow is in {country}, outside this mission's jurisdiction"
    is_owner = {
        "mission": mission_here,
        "desk": desk,
        "debarkation": "debarkation" in roles,
        "region": "region" in roles and home_province is not None and home_province in provinces,
        "system": False,
    }[owner]
    if action in ("cancel", "reroute", "start"):
        return None if desk or mission_here else "only the desk or the host country's mission may do this"
    if action in ("skip", "retry") and (is_owner or desk):
        return None
    if is_owner:
        return None
    if owner == "region" and "region" in roles:
        return f"the worker's home province ({home_province or 'unknown'}) is not one of this region's"
    return f"step is owned by {owner}"


STEP_ACTIONS = ("complete", "fail", "retry", "skip")
# The step's statuses each step action fits (the STEP_MOVES it may take).
ACTION_FITS = {
    "complete": (StepStatus.ACTIVE,),
    "fail": (StepStatus.ACTIVE,),
    "retry": (StepStatus.FAILED,),
    "skip": (StepStatus.ACTIVE, StepStatus.FAILED),
}


def available_step_actions(
    plan: Plan,
    *,
    status: str,
    step: str | None,
    step_status: str | None,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> list[str]:
    """The actions the caller may take on the workflow's current step now (the same checks as the
    commands: state, skippable, owner)."""
    definition = plan.step(step) if step else None
    if status != WorkflowStatus.ACTIVE or definition is None or step_status is None:
        return []
    out = []
    for action in STEP_ACTIONS:
        fits = StepStatus(step_status) in ACTION_FITS[action]
        if not fits or (action == "skip" and not definition.skippable):
            continue
        why = authorise(
            action,
            owner=definition.owner,
            roles=roles,
            countries=countries,
            provinces=provinces,
            country=country,
            home_province=home_province,
        )
        if why is None:
            out.append(action)
    return out


def may_set_home_province(*, kind: str, status: str, roles: frozenset[str]) -> bool:
    """Whether the caller may set the worker's home province now (the desk, on a live workflow)."""
    return status == WorkflowStatus.ACTIVE and kind != "evacuation" and bool(roles & DESK_ROLES)


def workflow_actions(
    plan: Plan,
    *,
    status: str,
    steps: list[dict[str, Any]],
    current: str | None,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> dict[str, Any]:
    """Whether the caller may cancel the workflow now, and the steps it may re-route it back to
    (the same checks as cancel and reroute: active, before the point of no return, desk or the
    host country's mission)."""
    none: dict[str, Any] = {"cancel": False, "reroute_to": []}
    if status != WorkflowStatus.ACTIVE:
        return none
    why = authorise(
        "cancel",
        owner="desk",
        roles=roles,
        countries=countries,
        provinces=provinces,
        country=country,
        home_province=home_province,
    )
    ponr = plan.point_of_no_return
    if why is not None or any(s["name"] == ponr and s["status"] == StepStatus.DONE for s in steps):
        return none
    back = [
        d.name
        for d in plan.steps
        if d.reroute_target and current is not None and plan.index(d.name) <= plan.index(current)
    ]
    return {"cancel": True, "reroute_to": back}
