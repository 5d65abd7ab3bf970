"""The one error shape (shared.errors, RFC 9457) built from each way a view states an error, and
the handlers every service installs: an unreachable database, an unexpected error, the OpenAPI."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pymongo.errors import ServerSelectionTimeoutError

from services.console.backends import Reply
from services.registry.app import create_app as registry_app
from shared.errors import PROBLEM_JSON, from_detail, request_field_errors
from shared.service import DATABASE_RETRY_AFTER, install_problem_handlers
from shared.settings import Settings


def test_field_errors_go_to_errors_and_their_other_members_become_extension_members() -> None:
    body = from_detail(409, [{"field": "status", "reason": "the case is new", "current_status": "new"}])
    assert body == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "status: the case is new",
        "errors": [{"field": "status", "reason": "the case is new"}],
        "current_status": "new",
    }


def test_a_mapping_or_a_sentence_is_the_detail() -> None:
    body = from_detail(409, {"reason": "recorded already", "current": {"version": 2}}, instance="/v1/x")
    assert body["detail"] == "recorded already" and body["current"] == {"version": 2}
    assert "errors" not in body and "reason" not in body and body["instance"] == "/v1/x"
    assert from_detail(404, "Not Found")["detail"] == "Not Found"
    # a pseudo-field (the whole body) is not repeated in the sentence; an extension member never
    # replaces a core one
    body = from_detail(400, [{"field": "(body)", "reason": "is not valid JSON", "status": "x"}])
    assert body["detail"] == "is not valid JSON" and body["status"] == 400


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/away")
    async def away() -> None:
        raise ServerSelectionTimeoutError("no primary")

    @app.get("/busy")
    async def busy() -> None:
        raise HTTPException(
            429, detail=[{"field": "authorization", "reason": "too many"}], headers={"Retry-After": "7"}
        )

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug; NIK 3171014501940001 in its message")

    install_problem_handlers(app)
    return app


async def test_retry_after_stays_a_header_and_is_said_in_the_body_too() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        away, busy, broken = [await client.get(p) for p in ("/away", "/busy", "/broken")]
    assert away.status_code == 503 and away.headers["content-type"] == PROBLEM_JSON
    assert away.headers["retry-after"] == str(DATABASE_RETRY_AFTER)
    assert (
        away.json()["retry_after"] == DATABASE_RETRY_AFTER and away.json()["title"] == "Service Unavailable"
    )
    assert busy.status_code == 429 and busy.headers["retry-after"] == "7" and busy.json()["retry_after"] == 7
    assert busy.json()["errors"] == [{"field": "authorization", "reason": "too many"}]
    assert broken.status_code == 500 and broken.headers["content-type"] == PROBLEM_JSON
    assert "3171014501940001" not in broken.text and "RuntimeError" not in broken.text


@pytest.mark.parametrize("path", ["/v1/departures"])
def test_openapi_declares_problems_as_problem_json(path: str) -> None:
    spec = registry_app(Settings(namespace="openapi_")).openapi()
    responses = spec["paths"][path]["post"]["responses"]
    for code in ("409", "422", "4XX", "5XX"):  # 409: the view's own description, with the shape
        assert list(responses[code]["content"]) == [PROBLEM_JSON], code
        assert responses[code]["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert "HTTPValidationError" not in str(spec)


def test_the_console_reads_the_field_errors_of_a_problem() -> None:
    body = from_detail(
        422, [{"field": "worker.nik", "reason": "16 digits"}, {"field": "country", "reason": "KR"}]
    )
    assert Reply(422, body).errors() == [
        {"field": "worker.nik", "reason": "16 digits"},
        {"field": "country", "reason": "KR"},
    ]
    conflict = from_detail(409, {"reason": "this departure is recorded already", "current": {}})
    assert Reply(409, conflict).errors() == [{"field": "", "reason": "this departure is recorded already"}]
    assert Reply(502, {"detail": "<html>bad gateway"}).errors() == [
        {"field": "", "reason": "<html>bad gateway"}
    ]
    assert Reply(404, None).errors() == [{"field": "", "reason": "HTTP 404"}]


def test_request_validation_errors_name_parameters_as_views_do() -> None:
    got = request_field_errors(
        [
            {"loc": ("query", "limit"), "msg": "not an integer"},
            {"loc": ("header", "idempotency-key"), "msg": "too long"},
            {"loc": ("body", "worker", "nik"), "msg": "16 digits"},
            {"loc": ("body",), "msg": "Field required"},
        ]
    )
    assert [e["field"] for e in got] == ["limit", "idempotency-key", "worker.nik", "(body)"]
