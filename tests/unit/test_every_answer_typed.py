"""Every success answer of every service declares what it is (issue 13: "every endpoint declares
its response model"): a JSON schema with properties, a reference or an item type; never `{}`."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.settings import Settings

SERVICES = ["intake", "registry", "casework", "escalation", "repatriation"]


def _untyped(schema: dict[str, Any]) -> bool:
    if not schema:
        return True
    return schema.get("type") == "object" and not ({"properties", "additionalProperties"} & set(schema))


@pytest.mark.parametrize("service", SERVICES)
def test_every_success_answer_has_a_schema(service: str) -> None:
    create_app = importlib.import_module(f"services.{service}.app").create_app
    app = create_app(Settings(namespace="t_"), ManualClock())
    missing = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation.get("responses", {}).items():
                if not code.startswith("2") or code == "204":
                    continue
                content = answer.get("content") or {}
                if not content or any(_untyped(c.get("schema", {})) for c in content.values()):
                    missing.append(f"{method.upper()} {path} {code}")
    assert not missing, f"{service}: answers without a declared schema: {missing}"
