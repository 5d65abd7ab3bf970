"""JSON bodies read strictly before any route sees them: one parse, one error shape.

Python's json module accepts duplicate keys (the last wins: a country or a severity could be
changed that way unseen) and recurses without bound (a 10,000-deep body is a RecursionError,
a 500). Every service's app runs this first: a body that is not JSON is 400 with the parse
error's offset, a duplicate key or a body nested too deep is 422 naming it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import problem as problem_body
from shared.errors import problem_response

MAX_DEPTH = 64  # no Lindungi request nests past a handful of levels


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def nesting_depth(body: bytes) -> int:
    """How deep objects and arrays nest, counted outside strings, without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def problem(body: bytes) -> tuple[int, dict[str, str]] | None:
    """(status, field error) for a body that must not reach a route, or None."""
    if not body.strip():
        return None
    if nesting_depth(body) > MAX_DEPTH:
        return 422, {"field": "(body)", "reason": f"nested deeper than {MAX_DEPTH} levels"}
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except DuplicateKey as exc:
        return 422, {"field": str(exc), "reason": "appears twice in one object; send each field once"}
    except UnicodeDecodeError:
        return 400, {"field": "(body)", "reason": "is not UTF-8 text"}
    except json.JSONDecodeError as exc:
        return 400, {"field": "(body)", "reason": f"is not valid JSON: {exc.msg} at byte {exc.pos}"}
    return None


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class StrictJSON:
    """ASGI middleware: checks JSON request bodies, then hands the same bytes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not is_json(headers.get(b"content-type", b"").decode("latin-1")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        found = problem(body)
        if found is not None:
            status, error = found
            answer = problem_response(
                status, problem_body(status, errors=[error], instance=scope.get("path"))
            )
            await answer(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
