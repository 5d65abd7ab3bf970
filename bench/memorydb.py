"""An in-memory stand-in for the few PyMongo calls the services' write paths make (the seed's tool).

The national seed runs the services' own functions (registry's record_departure, intake's submit
and projection, casework's on_incident and desk plans, escalation's chain start) against this
object, so the documents come out exactly as the services write them; it then bulk-inserts them.
It understands equality, $in/$nin/$lt/$lte/$gt/$gte/$ne/$exists/$or/$and on dotted paths and the
update operators $set/$setOnInsert/$unset/$inc/$max/$min/$push/$addToSet/$pull/$pullAll: enough for those
write paths, not a database. Not a module `make bench` runs (its name starts with no underscore
but it has no main; bench/__main__ skips it by name).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

Doc = dict[str, Any]
_MISSING = object()


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _cmp_ok(value: Any, op: str, arg: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if op == "$exists":
        return (value is not _MISSING) == bool(arg)
    if op == "$ne":
        return not _eq(value, arg)
    if op == "$in":
        return any(_eq(value, a) for a in arg)
    if op == "$nin":
        return not any(_eq(value, a) for a in arg)
    for v in values:
        if v is _MISSING or v is None:
            continue
        try:
            if (
                (op == "$lt" and v < arg)
                or (op == "$lte" and v <= arg)
                or (op == "$gt" and v > arg)
                or (op == "$gte" and v >= arg)
            ):
                return True
        except TypeError:
            continue
    if op in ("$lt", "$lte", "$gt", "$gte"):
        return False
    raise NotImplementedError(f"memorydb: operator {op}")


def _eq(value: Any, arg: Any) -> bool:
    if value is _MISSING:
        return arg is None
    if isinstance(value, list) and not isinstance(arg, list):
        return arg in value
    return bool(value == arg)


def matches(doc: Doc, query: Doc) -> bool:
    for key, cond in query.items():
        if key == "$or":
            if not any(matches(doc, q) for q in cond):
                return False
            continue
        if key == "$and":
            if not all(matches(doc, q) for q in cond):
                return False
            continue
        value = _get(doc, key)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            if not all(_cmp_ok(value, op, arg) for op, arg in cond.items()):
                return False
        elif not _eq(value, cond):
            return False
    return True


def _set(doc: Doc, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


def _unset(doc: Doc, path: str) -> None:
    parts = path.split(".")
    cur = doc
    for p in parts[:-1]:
        cur = cur.get(p)
        if not isinstance(cur, dict):
            return
    cur.pop(parts[-1], None)


def apply_update(doc: Doc, update: Doc, *, inserting: bool) -> None:
    for op, fields in update.items():
        for path, arg in fields.items():
            if op == "$set" or (op == "$setOnInsert" and inserting):
                _set(doc, path, copy.deepcopy(arg))
            elif op == "$setOnInsert":
                continue
            elif op == "$unset":
                _unset(doc, path)
            elif op in ("$max", "$min"):
                cur = _get(doc, path)
                if cur is _MISSING or cur is None or (arg > cur if op == "$max" else arg < cur):
                    _set(doc, path, copy.deepcopy(arg))
            elif op == "$inc":
                cur = _get(doc, path)
                _set(doc, path, (0 if cur is _MISSING else cur) + arg)
            elif op in ("$push", "$addToSet"):
                items = arg["$each"] if isinstance(arg, dict) and "$each" in arg else [arg]
                cur = _get(doc, path)
                lst = [] if cur is _MISSING or cur is None else cur
                for item in items:
                    if op == "$push" or item not in lst:
                        lst.append(copy.deepcopy(item))
                _set(doc, path, lst)
            elif op in ("$pull", "$pullAll"):
                cur = _get(doc, path)
                gone = arg if op == "$pullAll" else [arg]
                if isinstance(cur, list):
                    _set(doc, path, [x for x in cur if x not in gone])
            else:
                raise NotImplementedError(f"memorydb: update operator {op}")


class _Cursor:
    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs

    def sort(self, key: Any, direction: int = 1) -> _Cursor:
        keys = [(key, direction)] if isinstance(key, str) else list(key)
        for k, d in reversed(keys):
            self.docs.sort(key=lambda x, k=k: (_get(x, k) is _MISSING, str(_get(x, k))), reverse=d < 0)
        return self

    def limit(self, n: int) -> _Cursor:
        if n:
            self.docs = self.docs[:n]
        return self

    def skip(self, n: int) -> _Cursor:
        self.docs = self.docs[n:]
        return self

    async def to_list(self, length: int | None = None) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.docs[:length] if d is not None]

    def __aiter__(self) -> Any:
        async def gen() -> Any:
            for d in self.docs:
                yield copy.deepcopy(d)

        return gen()


def _indexable(value: Any) -> bool:
    return isinstance(value, str | int)


def _index_key(query: Doc) -> tuple[str, Any] | None:
    """A top-level field of the query held to one string or number: its candidates come from an index."""
    for field, value in query.items():
        if not field.startswith("$") and "." not in field and _indexable(value):
            return field, value
    return None


class MemoryCollection:
    """Documents by `_id`, in the order written. A read by any other top-level field equal to a
    string or number goes through an index of that field, made at its first use and kept by every
    write (else the seed, which reads by key for every report and departure it writes, grows with
    the square of the year). An index may name a document that no longer holds the value: every
    candidate is matched again, so it only has to name every one that does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: dict[Any, Doc] = {}
        self._order: dict[Any, int] = {}  # `_id` -> when written first, for the order of answers
        self._written_count = 0
        self._indexes: dict[str, dict[Any, set[Any]]] = {}

    def _written(self, doc: Doc) -> None:
        """Keep the order and every index up to date after a write of `doc` (in place or new)."""
        if doc["_id"] not in self._order:
            self._order[doc["_id"]] = self._written_count
            self._written_count += 1
        for field, index in self._indexes.items():
            self._index_doc(field, index, doc)

    @staticmethod
    def _index_doc(field: str, index: dict[Any, set[Any]], doc: Doc) -> None:
        value = doc.get(field)
        for v in value if isinstance(value, list) else [value]:  # an array matches by its elements
            if _indexable(v):
                index.setdefault(v, set()).add(doc["_id"])

    def _candidates(self, query: Doc) -> list[Doc]:
        by_id = query.get("_id", _MISSING)
        if by_id is not _MISSING and not isinstance(by_id, dict):
            ids: Any = [by_id]
        elif isinstance(by_id, dict) and set(by_id) == {"$in"}:
            ids = by_id["$in"]
        elif (key := _index_key(query)) is not None:
            field, value = key
            index = self._indexes.get(field)
            if index is None:
                index = self._indexes[field] = {}
                for d in self.docs.values():
                    self._index_doc(field, index, d)
            ids = index.get(value, ())
        else:
            return list(self.docs.values())
        found = [d for i in set(ids) if (d := self.docs.get(i)) is not None]
        return sorted(found, key=lambda d: self._order[d["_id"]])

    def _select(self, query: Doc) -> list[Doc]:
        return [d for d in self._candidates(query) if matches(d, query)]

    async def find_one(self, query: Doc | None = None, *args: Any, **kw: Any) -> Doc | None:
        found = self._select(query or {})
        return copy.deepcopy(found[0]) if found else None

    def find(self, query: Doc | None = None, *args: Any, **kw: Any) -> _Cursor:
        return _Cursor(list(self._select(query or {})))

    async def count_documents(self, query: Doc, **kw: Any) -> int:
        return len(self._select(query))

    async def insert_one(self, doc: Doc, **kw: Any) -> Any:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError(f"memorydb: {self.name} {doc['_id']}")
        self.docs[doc["_id"]] = copy.deepcopy(doc)
        self._written(self.docs[doc["_id"]])
        return SimpleNamespace(inserted_id=doc["_id"])

    async def insert_many(self, docs: list[Doc], **kw: Any) -> Any:
        for d in docs:
            await self.insert_one(d)
        return SimpleNamespace(inserted_ids=[d["_id"] for d in docs])

    def _upsert_base(self, query: Doc) -> Doc:
        return {k: v for k, v in query.items() if not k.startswith("$") and not isinstance(v, dict)}

    async def update_one(self, query: Doc, update: Doc, upsert: bool = False, **kw: Any) -> Any:
        found = self._select(query)
        if found:
            apply_update(found[0], update, inserting=False)
            self._written(found[0])
            return SimpleNamespace(matched_count=1, modified_count=1, upserted_id=None)
        if not upsert:
            return SimpleNamespace(matched_count=0, modified_count=0, upserted_id=None)
        doc = self._upsert_base(query)
        if doc.get("_id") in self.docs:
            raise DuplicateKeyError(f"memorydb: {self.name} {doc['_id']}")
        apply_update(doc, update, inserting=True)
        self.docs[doc["_id"]] = doc
        self._written(doc)
        return SimpleNamespace(matched_count=0, modified_count=0, upserted_id=doc["_id"])

    async def update_many(self, query: Doc, update: Doc, **kw: Any) -> Any:
        found = self._select(query)
        for d in found:
            apply_update(d, update, inserting=False)
            self._written(d)
        return SimpleNamespace(matched_count=len(found), modified_count=len(found), upserted_id=None)

    async def replace_one(self, query: Doc, doc: Doc, upsert: bool = False, **kw: Any) -> Any:
        found = self._select(query)
        if found:
            self.docs[found[0]["_id"]] = copy.deepcopy({**doc, "_id": found[0]["_id"]})
            self._written(self.docs[found[0]["_id"]])
            return SimpleNamespace(matched_count=1, modified_count=1, upserted_id=None)
        if not upsert:
            return SimpleNamespace(matched_count=0, modified_count=0, upserted_id=None)
        doc = {**self._upsert_base(query), **doc}  # as MongoDB: the filter's `_id` when the doc has none
        await self.insert_one(doc)
        return SimpleNamespace(matched_count=0, modified_count=0, upserted_id=doc["_id"])

    async def find_one_and_update(
        self,
        query: Doc,
        update: Doc,
        *args: Any,
        upsert: bool = False,
        return_document: Any = ReturnDocument.BEFORE,
        **kw: Any,
    ) -> Doc | None:
        found = self._select(query)
        if found:
            before = copy.deepcopy(found[0])
            apply_update(found[0], update, inserting=False)
            self._written(found[0])
            return copy.deepcopy(found[0]) if return_document == ReturnDocument.AFTER else before
        if not upsert:
            return None
        await self.update_one(query, update, upsert=True)
        doc = self.docs[self._upsert_base(query)["_id"]]
        return copy.deepcopy(doc) if return_document == ReturnDocument.AFTER else None

    async def delete_one(self, query: Doc, **kw: Any) -> Any:
        found = self._select(query)
        if found:
            del self.docs[found[0]["_id"]]
            del self._order[found[0]["_id"]]  # written again, it comes last, as in a dict
        return SimpleNamespace(deleted_count=len(found[:1]))


class MemoryDb:
    """db[name] -> a MemoryCollection; what was written stays in `collections` for the bulk load."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.collections: dict[str, MemoryCollection] = {}

    def __getitem__(self, name: str) -> MemoryCollection:
        if name not in self.collections:
            self.collections[name] = MemoryCollection(name)
        return self.collections[name]

    def take(self, name: str) -> list[Doc]:
        """The documents written to a collection, forgotten here (they go to the real database)."""
        coll = self.collections.pop(name, None)
        return list(coll.docs.values()) if coll else []
