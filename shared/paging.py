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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bson import json_util
from bson.errors import InvalidBSON
from fastapi import HTTPException, Request, Response

from shared.mongo import Doc

MAX_LIMIT = 500
# The windows of time a list newest first is read in, back from now (Order.read).
WINDOWS = (timedelta(days=7), timedelta(days=30), timedelta(days=182), timedelta(days=730))
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
        except (binascii.Error, ValueError, TypeError, OverflowError, InvalidBSON) as e:
            raise _bad_cursor() from e
        if not isinstance(values, list) or len(values) != len(self.fields):
            raise _bad_cursor()
        return values

    def after(self, query: Doc, cursor: str | None) -> Doc:
        """The query narrowed to the items after the cursor (the query itself when there is none).

        Besides the keyset (an `$or`), the first field is bounded at the top level ({f: {$lte: v}}
        newest first): the same answer, but a bound an index answers (and the local FerretDB
        hands SQLite, where it hands it no `$or`)."""
        if not cursor:
            return query
        values = self._values(cursor)
        clauses: list[Doc] = []
        for i, (name, direction) in enumerate(self.fields):
            clause: Doc = {n: values[j] for j, (n, _) in enumerate(self.fields[:i])}
            clause[name] = {"$gt" if direction == 1 else "$lt": values[i]}
            clauses.append(clause)
        (first, direction), top = self.fields[0], values[0]
        bound = {first: {"$gte" if direction == 1 else "$lte": top}} if top is not None else {}
        if "$or" in query or first in query:
            return {"$and": [query, {"$or": clauses}, *([bound] if bound else [])]}
        return {**query, **bound, "$or": clauses}

    async def read(
        self,
        collection: Any,
        query: Doc,
        *,
        limit: int,
        after: str | None = None,
        projection: Doc | None = None,
        now: datetime | None = None,
    ) -> list[Doc]:
        """The first `limit` items of the query in this order, after the cursor.

        A list newest first by a date (the first field descending), given `now`, is read a window
        of time at a time, back from now (or from the cursor's date): the newest week, month, half
        year, two years, then all. The first window holding `limit` items holds the page, because
        every item outside it is older, so comes after. A query that reads only the window is
        answered from an index on MongoDB as on the local FerretDB (which decodes every item its
        filter passes, and sorts in Go: the whole of a mission's year for one page, issue 11);
        a list with few items pays a few small reads."""
        first, direction = self.fields[0]
        top = self._values(after)[0] if after else now
        query_bounds_first = first in query  # then it is read as it is: a window would widen its bound
        query = self.after(query, after)
        if direction != -1 or not isinstance(top, datetime) or query_bounds_first:
            return await collection.find(query, projection).sort(self.sort).limit(limit).to_list()  # type: ignore[no-any-return]
        for span in WINDOWS:
            if top - datetime.min.replace(tzinfo=top.tzinfo) <= span:
                break  # a date near year 1 (a made-up cursor): no window reaches back so far
            bounded = {**query, first: {**query.get(first, {}), "$gte": top - span}}
            docs = await collection.find(bounded, projection).sort(self.sort).limit(limit).to_list()
            if len(docs) >= limit:
                return docs  # type: ignore[no-any-return]
        return await collection.find(query, projection).sort(self.sort).limit(limit).to_list()  # type: ignore[no-any-return]


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
