"""Errors described field by field, without echoing the input (it may carry personal data)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError


class FieldError(BaseModel):
    """What is wrong, named by the field it concerns ('(body)', '(message)' for the whole)."""

    field: str = Field(examples=["country"])
    reason: str = Field(examples=["JP is outside this mission's jurisdiction (KR)"])


class Problem(BaseModel):
    """Every error answer of every service: one or more field errors."""

    detail: list[FieldError]


def field_errors(errors: list[Any] | ValidationError) -> list[dict[str, str]]:
    """[{'field': 'worker.nik', 'reason': '...'}] from pydantic/FastAPI errors; never the value."""
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    out = []
    for e in items:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc) or "(message)", "reason": str(e.get("msg", "invalid"))})
    return out


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
