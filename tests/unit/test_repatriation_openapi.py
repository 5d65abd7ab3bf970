"""repatriation's HTTP contract: every answer declared by a model; the commands served from one table."""

from __future__ import annotations

from typing import Any

from services.repatriation import views
from services.repatriation.app import create_app


def _schema(op: dict[str, Any]) -> dict[str, Any]:
    ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
    schema: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return schema.get("items", schema)


def test_every_endpoint_answers_a_declared_model() -> None:
    api = create_app().openapi()
    untyped = [
        f"{method.upper()} {path}"
        for path, ops in api["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
        if "$ref" not in _schema(op)
    ]
    assert untyped == []


def test_the_commands_keep_their_urls_names_and_bodies() -> None:
    api = create_app().openapi()
    for command in views.COMMANDS:
        op = api["paths"][f"/v1/repatriations/{{repatriation_id}}{command.path}"]["post"]
        assert op["operationId"].startswith(f"{command.name}_v1_repatriations")
        assert op["summary"] == command.name.replace("_", " ").title()
        body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith(f"/{command.body.__name__}")
        assert _schema(op)["$ref"].endswith("/RepatriationView")
        params = [p["name"] for p in op["parameters"] if p["in"] == "path"]
        assert params == (["repatriation_id", "step"] if "{step}" in command.path else ["repatriation_id"])
    assert {c.path.rsplit("/", 1)[-1] for c in views.COMMANDS} == {
        "complete",
        "skip",
        "fail",
        "retry",
        "reroute",
        "home-province",
        "cancel",
    }
