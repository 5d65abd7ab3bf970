"""The workflow kinds' step lists, loaded from the YAML files beside this module."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from services.repatriation.domain import Plan, parse_plan
from shared.events.repatriation import RepatriationKind

FOLDER = Path(__file__).parent / "workflows"


@lru_cache(maxsize=1)
def load() -> dict[RepatriationKind, Plan]:
    """Every plan, by kind (read once)."""
    plans = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        plan = parse_plan(yaml.safe_load(path.read_text()))
        plans[plan.kind] = plan
    missing = set(RepatriationKind) - set(plans)
    if missing:
        raise RuntimeError(f"no plan for {sorted(missing)} in {FOLDER}")
    return plans
