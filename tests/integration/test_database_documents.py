"""A document reads back exactly as it was written, whatever it holds.

The local FerretDB stores a document as JSON text with its types beside it (sjson), and every
read decodes that text. Build `lindungi.11` decodes it in one pass (deploy/local/ferretdb/
lindungi_sjson.go) and falls back to FerretDB's own decoder for anything else; a slip there would
change what every service reads, silently. So these documents hold every type the store keeps,
nested and in arrays, with the strings and numbers a decoder gets wrong (escapes, control
characters, non-ASCII text, the doubles' and integers' limits), and are read back by each kind of read
the services use (no array directly in an array: FerretDB 1.24 refuses those). They hold on any
MongoDB-protocol server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Binary, Int64, ObjectId, Regex, Timestamp
from pymongo import ReturnDocument

from shared.mongo import Doc, connect
from shared.settings import Settings

pytestmark = pytest.mark.integration

STRINGS = [
    "",
    "kbri-seoul",
    'q"uote',
    "back\\slash",
    "tab\tnew\nline\r",
    "\x01\x1f control",
    "é ü 漢字 😀",
    "\u2028\u2029",
    "<b>&amp;</b>",
    '{"not": ["a", "document"]}',
    "null",
    "true",
    "12",
]


def _document(n: int) -> Doc:
    """The n-th test document: every kind of value at the top, nested, and in arrays."""
    scalars: dict[str, Any] = {
        "string": STRINGS[n % len(STRINGS)],
        "int32": [0, -1, 2**31 - 1, -(2**31)][n % 4],
        "int64": Int64([0, 2**31, 2**63 - 1, -(2**63)][n % 4]),
        "double": [0.5, -0.0, 1e300, -2.5e-300, 3.0][n % 5],
        "bool": n % 2 == 0,
        "null": None,
        "date": datetime(2026, 12, 2, 1, 2, 3, 4000, tzinfo=UTC),
        "object_id": ObjectId(f"{n:024x}"),
        "binary": Binary(bytes([0, 1, 2, n % 256]), 0),  # read back as bytes (PyMongo's default)
        "binary_user": Binary(b"\xff\x00" * (n + 1), 128),
        "regex": Regex('^a.*"b$', "i"),
        "timestamp": Timestamp(1_700_000_000 + n, 1),
    }
    return {
        "_id": f"doc-{n}",
        "kind": "probe",
        **scalars,
        "nested": {
            "inner": dict(scalars),
            "empty": {},
            "list": [dict(scalars), {"empty": []}, {"numbers": [1, {"two": [2, 3]}]}],
        },
        "list": list(scalars.values()),
        "empty_list": [],
        "empty_doc": {},
        "keys": {"é key": 1, "with space": 2, "dollar$inside": 3},
    }


def _same(read: Any, written: Any, where: str = "") -> None:
    """Equal, type for type (True is not 1). -0.0 is equal to 0.0: FerretDB 1.24 keeps no sign of
    zero (every build; MongoDB does), and nothing here depends on it."""
    if isinstance(written, dict):
        assert isinstance(read, dict), where
        assert list(read) == list(written), f"{where}: keys {list(read)} != {list(written)}"
        for key, value in written.items():
            _same(read[key], value, f"{where}.{key}")
        return
    if isinstance(written, list):
        assert isinstance(read, list) and len(read) == len(written), where
        for i, (r, w) in enumerate(zip(read, written, strict=True)):
            _same(r, w, f"{where}[{i}]")
        return
    if isinstance(written, Binary) and written.subtype == 0:
        written = bytes(written)
    if isinstance(written, Regex):
        assert isinstance(read, Regex), where
        assert (read.pattern, read.flags) == (written.pattern, written.flags), where
        return
    assert type(read) is type(written) or (isinstance(written, int) and type(read) is int), (
        f"{where}: {type(read).__name__} read for {type(written).__name__}"
    )
    assert read == written, f"{where}: {read!r} != {written!r}"


async def test_documents_read_back_as_written_by_every_kind_of_read() -> None:
    settings = Settings()
    client = connect(settings)
    db = client[settings.database("documents_probe")]
    try:
        await db.probe.drop()
        docs = [_document(n) for n in range(20)]
        await db.probe.insert_many(docs)
        by_id = {d["_id"]: d for d in docs}

        for doc in docs:  # by `_id`
            _same(await db.probe.find_one({"_id": doc["_id"]}), doc, doc["_id"])
        read = await db.probe.find({"kind": "probe"}).to_list()  # a filter on another field
        assert len(read) == len(docs)
        for doc in read:
            _same(doc, by_id[doc["_id"]], doc["_id"])
        ordered = await db.probe.find({}).sort("_id", -1).to_list()  # sorted
        assert [d["_id"] for d in ordered] == sorted(by_id, reverse=True)
        for doc in ordered:
            _same(doc, by_id[doc["_id"]], doc["_id"])
        # a write that reads the document first, answering it before and after
        before = await db.probe.find_one_and_update(
            {"_id": "doc-3"}, {"$set": {"touched": True}}, return_document=ReturnDocument.BEFORE
        )
        _same(before, by_id["doc-3"], "before")
        after = await db.probe.find_one_and_update(
            {"_id": "doc-3"}, {"$inc": {"int32": 1}}, return_document=ReturnDocument.AFTER
        )
        _same(after, {**by_id["doc-3"], "int32": by_id["doc-3"]["int32"] + 1, "touched": True}, "after")
    finally:
        await client.drop_database(db.name)
        await client.close()
