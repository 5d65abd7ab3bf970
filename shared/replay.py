"""Rebuild a service's read models from topics: replay into fresh collections, then switch over.

A read model is collections a service derives only from events (its projection of another
service's data, escalation's counters). `rebuild` reads the model's topics from the beginning
to their end now (offsets E1), applies every event through the service's own projector into
fresh collections (`<name>__rebuild`, same database, with the service's indexes), settles
them (a projector may finish from what it saw, e.g. escalation marks what its kept decisions
counted), then switches: the live collection is renamed aside, the fresh one takes its name,
the old one is dropped, and settles again. Events that arrived meanwhile (after E1) are then
applied to the live collections from E1 to the end, and settled once more. Projectors are
idempotent (the highest version of a document wins; a counter member is a set element), so
applying an event twice, or after the live consumer did, changes nothing.

The switch is two renames (FerretDB has no `renameCollection` with `dropTarget`): between them
the collection is briefly absent; a live write that recreates it in that gap is moved aside
too and its event re-applied by the catch-up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.envelope import Envelope, Event, UnknownEventType
from shared.kafka import Offsets, end_offsets, read_range
from shared.mongo import Doc
from shared.settings import Settings
from shared.topics import Topic

log = logging.getLogger("lindungi.replay")

FRESH = "__rebuild"
ASIDE = "__replaced"

Project = Callable[[AsyncDatabase[Doc], Envelope, Event], Awaitable[Any]]
Settle = Callable[[AsyncDatabase[Doc]], Awaitable[dict[str, int]]]
Indexes = Callable[[AsyncDatabase[Doc]], Awaitable[None]]


@dataclass
class Projector:
    """How events land in a read model during one rebuild (it may remember what it saw)."""

    project: Project  # (db, envelope, event): idempotent
    # after the fresh build (before the switch), right after the switch and after the catch-up:
    # what it did, by name
    settle: Settle | None = None


@dataclass(frozen=True)
class ReadModel:
    """Collections of one service derived only from topics, and how an event lands in them."""

    service: str
    topics: tuple[Topic, ...]
    collections: tuple[str, ...]
    projector: Callable[[AsyncDatabase[Doc]], Awaitable[Projector]]  # one per rebuild, given the live db
    indexes: Indexes  # the service's index creation (run on the fresh collections too)

    @property
    def topic_names(self) -> str:
        return ", ".join(t.name for t in self.topics)


def plain(project: Project) -> Callable[[AsyncDatabase[Doc]], Awaitable[Projector]]:
    """A projector that needs nothing but the event (a projection of another service's data)."""

    async def start(_db: AsyncDatabase[Doc]) -> Projector:
        return Projector(project)

    return start


class _Redirected:
    """A database whose read-model collections are the fresh ones: the service's own store code
    writes into them unchanged."""

    def __init__(self, db: AsyncDatabase[Doc], names: dict[str, str]) -> None:
        self._db = db
        self._names = names

    def __getitem__(self, name: str) -> Any:
        return self._db[self._names.get(name, name)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@dataclass
class Report:
    events: int = 0  # applied into the fresh collections
    caught_up: int = 0  # applied after the switch (arrived during the rebuild)
    skipped: int = 0  # not decodable or not this read model's type (the live consumer dead-letters those)
    documents: dict[str, int] | None = None
    settled: dict[str, int] = field(default_factory=dict)  # what the projector's settle did (last run)


async def _apply_range(
    settings: Settings,
    model: ReadModel,
    project: Project,
    db: Any,
    start: Offsets | None,
    end: Offsets,
    report: Report,
) -> int:
    """Apply the topics' events in [start, end) per partition (start None: the beginning)."""
    applied = 0
    async for r in read_range(settings, end, start=start):
        got = _event(r.value, model)
        if got is None:
            report.skipped += 1
            continue
        await project(cast(AsyncDatabase[Doc], db), *got)
        applied += 1
    return applied


def _event(value: bytes | None, model: ReadModel) -> tuple[Envelope, Event] | None:
    try:
        env = Envelope.model_validate_json(value or b"")
        event = env.payload()
    except (ValidationError, UnknownEventType):
        return None
    return (env, event) if type(event).topic in model.topics else None


async def _rename(db: AsyncDatabase[Doc], source: str, target: str) -> None:
    await db.client.admin.command("renameCollection", f"{db.name}.{source}", to=f"{db.name}.{target}")


async def _switch(db: AsyncDatabase[Doc], name: str) -> None:
    """The fresh collection takes the live one's name; the old one is dropped."""
    await db[name + ASIDE].drop()
    for _ in range(5):
        if name in await db.list_collection_names():
            await _rename(db, name, name + ASIDE)
        try:
            await _rename(db, name + FRESH, name)
            break
        except OperationFailure:
            # a live write recreated it between the renames: move that aside as well
            await db[name + ASIDE].drop()
    else:
        raise RuntimeError(f"could not switch {db.name}.{name}: it keeps being recreated")
    await db[name + ASIDE].drop()


async def rebuild(
    settings: Settings,
    db: AsyncDatabase[Doc],
    model: ReadModel,
    *,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> Report:
    """Replay the topics into fresh collections, switch them in, catch up; what was done.

    `meanwhile` runs after the fresh build, before the switch (tests land events there).
    """
    report = Report()
    projector = await model.projector(db)
    names = {c: c + FRESH for c in model.collections}
    for fresh in names.values():
        await db[fresh].drop()
    fresh_db = _Redirected(db, names)
    await model.indexes(cast(AsyncDatabase[Doc], fresh_db))
    first_end = await end_offsets(settings, [settings.topic(t.name) for t in model.topics])
    report.events = await _apply_range(settings, model, projector.project, fresh_db, None, first_end, report)
    if projector.settle is not None:
        report.settled = await projector.settle(cast(AsyncDatabase[Doc], fresh_db))
    if meanwhile is not None:
        await meanwhile()
    for c in model.collections:
        if c + FRESH not in await db.list_collection_names():
            await db.create_collection(c + FRESH)  # nothing to project: an empty read model
        await _switch(db, c)
    if projector.settle is not None:
        await projector.settle(db)  # what was settled live during the switch is settled again at once
    now_end = await end_offsets(settings, [settings.topic(t.name) for t in model.topics])
    report.caught_up = await _apply_range(settings, model, projector.project, db, first_end, now_end, report)
    if projector.settle is not None:
        report.settled = await projector.settle(db)
    report.documents = {c: await db[c].count_documents({}) for c in model.collections}
    log.info("read model rebuilt", extra={"topic": model.topic_names})
    return report
