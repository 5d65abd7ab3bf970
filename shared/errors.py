"""Errors described field by field, without echoing the input (it may carry personal data).

Every 4xx/5xx answer of every service is an RFC 9457 problem details object
(`application/problem+json`): `type`, `title`, `status`, `detail`, `instance`, and, whenever
fields are at fault, the extension member `errors: [{"field", "reason"}]`. Views raise
FastAPI's HTTPException with the field errors as its detail; the handlers `shared.service`
installs turn every error, wherever it comes from, into this one shape (`problem_response`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
# RFC 9457 §4.2.1: "about:blank" says the problem is no more than its HTTP status, whose phrase
# is the title; what differs between two problems of one status is said by `errors` and `detail`.
ABOUT_BLANK = "about:blank"
_MEMBERS = ("type", "title", "status", "detail", "instance", "errors")


class FieldError(BaseModel):
    """What is wrong, named by the field it concerns: a dotted path into the body, a header or a
    query parameter ('authorization', 'Idempotency-Key', 'after'), or '(body)' for the whole."""

    field: str = Field(examples=["country"])
    reason: str = Field(examples=["JP is outside this mission's jurisdiction (KR)"])


class Problem(BaseModel):
    """Every error answer of every service (RFC 9457 problem details, application/problem+json).

    Extension members beyond `errors` say more about some problems: a 409 names the state the
    resource is in (`current_status`, `current`, `current_step`...), a 429 or 503 `retry_after`
    (seconds, as the Retry-After header says).
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(ABOUT_BLANK, examples=[ABOUT_BLANK])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["status: the case is resolved"])
    instance: str | None = Field(None, examples=["/v1/cases/c-1/claim"])
    errors: list[FieldError] | None = None


def problem(
    status: int,
    *,
    errors: list[dict[str, str]] | None = None,
    detail: str | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """A problem details body; `detail` says the field errors in one line when not given."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    if detail is None:
        detail = "; ".join(_said(e) for e in errors or []) or title
    body: dict[str, Any] = {"type": ABOUT_BLANK, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": str(e["field"]), "reason": str(e["reason"])} for e in errors]
    body.update({k: v for k, v in extensions.items() if k not in _MEMBERS})
    return body


def _said(error: dict[str, str]) -> str:
    field, reason = str(error.get("field", "")), str(error.get("reason", ""))
    return f"{field}: {reason}" if field and not field.startswith("(") else reason


def from_detail(
    status: int, detail: Any, *, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The problem body for an HTTPException's detail, whichever way a view gave it: field errors
    ([{'field', 'reason', ...}]: members beyond the two become extension members, e.g. a 409's
    `current_status`), a mapping ({'reason', 'current'}) or a sentence (Starlette's 'Not Found')."""
    items = detail if isinstance(detail, list) else [detail] if isinstance(detail, dict) else []
    errors: list[dict[str, str]] = []
    sentences: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            sentences.append(str(item))
            continue
        for key, value in item.items():
            if key not in ("field", "reason", *_MEMBERS):  # a core member is never replaced
                extensions.setdefault(key, value)
        if item.get("field"):
            errors.append({"field": str(item["field"]), "reason": str(item.get("reason", "invalid"))})
        elif "reason" in item:
            sentences.append(str(item["reason"]))
    if not items and detail:
        sentences.append(str(detail))
    said = "; ".join([*sentences, *(_said(e) for e in errors)]) or None
    return problem(status, errors=errors, detail=said, instance=instance, **extensions)


def problem_response(
    status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The answer for a problem body (`problem`, `from_detail`), with its media type."""
    return JSONResponse(status_code=status, content=body, headers=headers, media_type=PROBLEM_JSON)


def field_errors(errors: list[Any] | ValidationError) -> list[dict[str, str]]:
    """[{'field': 'worker.nik', 'reason': '...'}] from pydantic/FastAPI errors; never the value."""
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    out = []
    for e in items:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc) or "(message)", "reason": str(e.get("msg", "invalid"))})
    return out


def request_field_errors(errors: list[Any]) -> list[dict[str, str]]:
    """FastAPI's request validation errors named as views name theirs: a query parameter or a
    header by its name ('limit', 'idempotency-key'), not 'query.limit'; '(body)' for the whole."""
    named = []
    for e in errors:
        loc = list(e.get("loc", ()))
        where = loc.pop(0) if loc and loc[0] in ("body", "query", "header", "path", "cookie") else None
        named.append({**e, "loc": loc} if loc or where != "body" else {**e, "loc": ["(body)"]})
    return field_errors(named)


def describe(exc: BaseException) -> str:
    """A one-line description of an error that is safe to log and to put in a DLQ header."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{e['field']}: {e['reason']}" for e in field_errors(exc))[:2000]
    return f"{type(exc).__name__}: {exc}"[:2000]


class PermanentError(Exception):
    """A message that can never succeed: it goes to the dead-letter topic without retries."""


class Conflict(Exception):
    """A change that the resource's current state does not allow: HTTP 409 in every service.

    `status` is the state the resource is in (casework's case status) and `current` the
    resource as it stands (registry's departure), for the 409 body; both are optional.
    """

    def __init__(
        self, reason: str, *, status: str | None = None, current: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.current = current
