"""OpenAPI at /docs for intake and registry: every property of every request model has an example."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared.settings import Settings


def request_schemas(spec: dict[str, Any]) -> set[str]:
    """Names of every component schema reachable from a request body."""
    components = spec["components"]["schemas"]
    todo: list[Any] = []
    for path in spec["paths"].values():
        for op in path.values():
            for media in op.get("requestBody", {}).get("content", {}).values():
                todo.append(media.get("schema", {}))
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    todo.append(components[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return seen


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (intake_app, {"IncidentReport", "ReportedWorker", "ReportedAgency", "ReportedEmployer", "Reporter"}),
        (
            registry_app,
            {"DepartureIn", "DepartureUpdate", "NextOfKin", "AgencyIn", "EmployerIn", "WorkerSearch"},
        ),
    ],
)
async def test_every_request_field_is_documented_with_an_example(factory: Any, expected: set[str]) -> None:
    app: FastAPI = factory(Settings(namespace="openapi_"))
    transport = httpx.ASGITransport(app=app)  # no lifespan: documentation needs no broker
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = (await client.get("/openapi.json")).json()
    names = request_schemas(spec)
    assert expected <= names
    missing = [
        f"{name}.{prop}"
        for name in sorted(names)
        if spec["components"]["schemas"][name].get("type") == "object"
        for prop, schema in spec["components"]["schemas"][name].get("properties", {}).items()
        if "example" not in schema and "examples" not in schema
    ]
    assert missing == []


async def test_the_idempotency_key_header_and_csv_import_are_documented() -> None:
    spec = intake_app(Settings(namespace="openapi_")).openapi()
    params = spec["paths"]["/v1/incidents"]["post"]["parameters"]
    (key,) = [p for p in params if p["name"].lower() == "idempotency-key"]
    assert key["in"] == "header"
    assert key.get("examples") or key["schema"].get("examples")
    registry = registry_app(Settings(namespace="openapi_")).openapi()
    body = registry["paths"]["/v1/imports"]["post"]["requestBody"]["content"]["text/csv"]
    assert body["example"].startswith("nik,")
