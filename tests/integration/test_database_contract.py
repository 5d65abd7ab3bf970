"""What Lindungi relies on from its database, checked against the server the tests run on.

Every claim, timer, lease and idempotency marker rests on MongoDB's single-document
atomicity. FerretDB v1 alone does not give it under concurrency (it loses updates);
deploy/local/infra.sh puts mongoserial in front of it so that it does. These tests fail
loudly if the database in use breaks the contract.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from pymongo import ReturnDocument

from shared.mongo import connect
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_concurrent_updates_of_one_document_are_all_kept(settings: Settings) -> None:
    clients = [connect(settings) for _ in range(4)]
    try:
        colls = [c[settings.database("contract")]["counters"] for c in clients]
        await colls[0].insert_one({"_id": "n", "n": 0, "seen": []})

        async def bump(i: int) -> None:
            for k in range(50):
                await colls[i].update_one({"_id": "n"}, {"$inc": {"n": 1}, "$push": {"seen": f"{i}-{k}"}})

        await asyncio.gather(*(bump(i) for i in range(4)))
        doc = await colls[0].find_one({"_id": "n"})
    finally:
        for c in clients:
            await c.close()
    assert doc is not None
    assert doc["n"] == 200
    assert len(doc["seen"]) == 200


async def test_concurrent_claims_never_give_one_document_twice(settings: Settings) -> None:
    clients = [connect(settings) for _ in range(4)]
    claims: Counter[int] = Counter()
    try:
        colls = [c[settings.database("contract")]["jobs"] for c in clients]
        await colls[0].insert_many([{"_id": i, "state": "waiting"} for i in range(100)])

        async def worker(i: int) -> None:
            while True:
                doc = await colls[i].find_one_and_update(
                    {"state": "waiting"},
                    {"$set": {"state": "taken", "by": i}},
                    return_document=ReturnDocument.AFTER,
                )
                if doc is None:
                    return
                claims[doc["_id"]] += 1

        await asyncio.gather(*(worker(i) for i in range(4)))
    finally:
        for c in clients:
            await c.close()
    assert len(claims) == 100
    assert max(claims.values()) == 1
