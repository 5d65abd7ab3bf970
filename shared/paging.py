"""Cursor paging for list endpoints: a keyset on the list's own order, the next page in a Link header.

A list answers at most `limit` items (1 to 500, validated by the endpoint). When there are more,
the answer carries `Link: <...&after=CURSOR>; rel="next"` (RFC 8288, as GitHub's API does), so the
body stays a plain JSON array and a client that wants everything follows `next` until it is
absent. The cursor is opaque to clients: the sort values of the last item given, so the next page
starts strictly after it whatever was inserted meanwhile (no skipped or repeated items, and no
`skip` over a growing collection). The order must end on a unique field (`_id`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bson import json_util
from fastapi import HTTPException, Request, Response

from shared.mongo import Doc

MAX_LIMIT = 500
LINK_DOC = 'Present when there are more items: `<url with after=...>; rel="next"` (RFC 8288).'


class Order:
    """A list's sort order, e.g. Order(("opened_at", 1), ("_id", 1)); the last field must be unique."""

    def __init__(self, *fields: tuple[str, int]) -> None:
        if not fields or fields[-1][0] != "_id":
            raise ValueError("a paged order ends on _id")
        self.fields = fields

    @property
    def sort(self) -> list[tuple[str, int]]:
        return list(self.fields)

    def cursor(self, doc: Doc) -> str:
        raw = json_util.dumps([doc.get(name) for name, _ in self.fields])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _values(self, cursor: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json_util.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _bad_cursor() from e
        if not isinstance(values, list) or len(values) != len(self.fields):
            raise _bad_cursor()
        return values

    def after(self, query: Doc, cursor: str | None) -> Doc:
        """The query narrowed to the items after the cursor (the query itself when there is none)."""
        if not cursor:
            return query
        values = self._values(cursor)
        clauses: list[Doc] = []
        for i, (name, direction) in enumerate(self.fields):
            clause: Doc = {n: values[j] for j, (n, _) in enumerate(self.fields[:i])}
            clause[name] = {"$gt" if direction == 1 else "$lt": values[i]}
            clauses.append(clause)
        if "$or" in query:
            return {"$and": [query, {"$or": clauses}]}
        return {**query, "$or": clauses}


def _bad_cursor() -> HTTPException:
    return HTTPException(422, detail=[{"field": "after", "reason": "not a cursor given by this list"}])


def page(request: Request, response: Response, docs: Sequence[Doc], *, limit: int, order: Order) -> list[Doc]:
    """The first `limit` of docs (read with limit + 1); sets the Link header when there are more."""
    items = list(docs[:limit])
    if len(docs) > limit and items:
        url = request.url.include_query_params(after=order.cursor(items[-1]), limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return items


def next_after(link: str | None) -> str | None:
    """The `after` cursor of a Link header's next page, for clients (the console) that follow it."""
    if not link or 'rel="next"' not in link:
        return None
    url = link[link.index("<") + 1 : link.index(">")]
    values = parse_qs(urlsplit(url).query).get("after")
    return values[0] if values else None
