"""insert_new: documents already there are counted as such; any other write error is raised."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import BulkWriteError

from shared.mongo import insert_new


class _Refusing:
    def __init__(self, codes: list[int], inserted: int) -> None:
        self.codes, self.inserted = codes, inserted

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool) -> Any:
        assert ordered is False
        errors = [{"index": i, "code": c, "errmsg": "x"} for i, c in enumerate(self.codes)]
        raise BulkWriteError({"writeErrors": errors, "nInserted": self.inserted})


async def test_duplicates_are_the_documents_already_there() -> None:
    inserted, there = await insert_new(_Refusing([11000, 11000], 3), [{}] * 5)  # type: ignore[arg-type]
    assert (inserted, there) == (3, [0, 1])


async def test_any_other_write_error_is_raised() -> None:
    with pytest.raises(BulkWriteError):
        await insert_new(_Refusing([11000, 121], 3), [{}] * 5)  # type: ignore[arg-type]


async def test_nothing_to_insert_is_no_call() -> None:
    assert await insert_new(_Refusing([121], 0), []) == (0, [])  # type: ignore[arg-type]
