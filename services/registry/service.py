"""registry's service functions: record and change departures, flag parties, retention (CSV
exports are imported in services.registry.imports, in chunks, from the same pieces as
record_departure).

Used by the HTTP views, the Kafka handlers and the import CLI; dependencies come in explicitly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.registry import domain, store
from services.registry.models import DepartureIn, DepartureUpdate
from shared.errors import Conflict
from shared.events.registry import DepartureRecorded, DepartureStatus, name_dob_key
from shared.mongo import Doc
from shared.service import Runtime

log = logging.getLogger("lindungi.registry")


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


# The departure document's fields DepartureRecorded carries as they are (hashes, never identifiers).
_SNAPSHOT_FIELDS = (
    "worker_id",
    "version",
    "status",
    "full_name",
    "date_of_birth",
    "nik_hash",
    "passport_hash",
    "name_dob_hash",
    "home_province",
    "home_regency",
    "destination_country",
    "sector",
    "skill_level",
    "scheme",
    "agency_id",
    "employer_id",
    "employer_name",
    "departure_date",
    "sex",
)


def _event(doc: Doc, change: str, now: Any) -> DepartureRecorded:
    """The DepartureRecorded snapshot of a departure document (hashes only, never identifiers)."""
    snapshot = {field: doc.get(field) for field in _SNAPSHOT_FIELDS}
    return DepartureRecorded(departure_id=doc["_id"], change=change, recorded_at=now, **snapshot)


def worker_hashes(rt: Runtime, data: DepartureIn) -> tuple[str | None, str | None]:
    """The keyed hashes of a departure's NIK and passport number (what workers are found by)."""
    vault = rt.vault
    nik_hash = vault.lookup_hash("nik", data.nik) if data.nik else None
    passport_hash = vault.lookup_hash("passport", data.passport_number) if data.passport_number else None
    return nik_hash, passport_hash


def worker_id_of(found: Doc | None, nik_hash: str | None, passport_hash: str | None) -> str:
    """The id of the worker found by hash, or the id a new worker gets."""
    return found["_id"] if found else domain.worker_id_for(nik_hash or passport_hash or "")


def worker_identity(
    rt: Runtime, data: DepartureIn, nik_hash: str | None, passport_hash: str | None, now: datetime
) -> Doc:
    """The identity a worker is stored with (numbers encrypted, with their keyed hashes)."""
    vault = rt.vault
    identity: Doc = {
        "full_name": data.full_name,
        "date_of_birth": data.date_of_birth.isoformat(),
        "sex": data.sex,
        "name_dob_hash": vault.lookup_hash("name_dob", name_dob_key(data.full_name, data.date_of_birth)),
        "home_province": data.home_province,
        "home_regency": data.home_regency,
        "updated_at": now,
    }
    if data.nik:
        identity |= {"nik_enc": vault.encrypt("nik", data.nik), "nik_hash": nik_hash}
    if data.passport_number:
        identity |= {
            "passport_enc": vault.encrypt("passport", data.passport_number),
            "passport_hash": passport_hash,
        }
    if data.phone:
        identity["phone_enc"] = vault.encrypt("phone", data.phone)
    if data.next_of_kin:
        kin = data.next_of_kin.model_dump()
        if kin.get("phone"):
            kin["phone"] = vault.encrypt("phone", kin["phone"])
        identity["next_of_kin"] = kin
    return identity


async def _record_worker(rt: Runtime, data: DepartureIn, now: datetime) -> tuple[str, Doc]:
    """Upsert the worker a departure is about (found by NIK or passport hash); returns the worker
    id and the identity stored (numbers encrypted, with their keyed hashes)."""
    nik_hash, passport_hash = worker_hashes(rt, data)
    found = await store.worker_by_hash(rt.db, nik_hash=nik_hash, passport_hash=passport_hash)
    worker_id = worker_id_of(found, nik_hash, passport_hash)
    identity = worker_identity(rt, data, nik_hash, passport_hash, now)
    await store.upsert_worker(rt.db, worker_id, identity, now)
    return worker_id, identity


def parties(data: DepartureIn) -> tuple[str | None, list[tuple[str, str, Doc]]]:
    """The departure's employer id, and the employer and agency it names as (collection, id,
    fields a new record gets)."""
    employer_id = None
    named: list[tuple[str, str, Doc]] = []
    if data.employer_name:
        employer_id = domain.employer_id_for(data.employer_name, data.destination_country)
        named.append(
            (store.EMPLOYERS, employer_id, {"name": data.employer_name, "country": data.destination_country})
        )
    if data.agency_id:
        named.append((store.AGENCIES, data.agency_id, {"licence": data.agency_licence}))
    return employer_id, named


async def _record_parties(rt: Runtime, data: DepartureIn) -> str | None:
    """Make sure the departure's employer and agency exist; returns the employer's id."""
    employer_id, named = parties(data)
    for collection, party_id, on_insert in named:
        await store.ensure_party(rt.db, collection, party_id, on_insert)
    return employer_id


def departure_snapshot(data: DepartureIn, *, worker_id: str, identity: Doc, employer_id: str | None) -> Doc:
    """The departure's fields as stored (the worker's identifiers as keyed hashes only)."""
    return {
        "worker_id": worker_id,
        "status": str(data.status),
        "full_name": data.full_name,
        "date_of_birth": data.date_of_birth.isoformat(),
        "sex": data.sex,
        "nik_hash": identity.get("nik_hash"),
        "passport_hash": identity.get("passport_hash"),
        "name_dob_hash": identity["name_dob_hash"],
        "home_province": data.home_province,
        "home_regency": data.home_regency,
        "destination_country": data.destination_country,
        "sector": str(data.sector),
        "skill_level": str(data.skill_level),
        "scheme": str(data.scheme),
        "agency_id": data.agency_id,
        "agency_licence": data.agency_licence,
        "employer_id": employer_id,
        "employer_name": data.employer_name,
        "contract_start": _iso(data.contract_start),
        "contract_end": _iso(data.contract_end),
        "departure_date": data.departure_date.isoformat(),
        "departure_month": data.departure_date.isoformat()[:7],
        "departure_port": data.departure_port,
        "training": data.training or [],
        "certificates": data.certificates or [],
    }


def new_departure(rt: Runtime, departure_id: str, snapshot: Doc, now: datetime) -> tuple[Doc, Doc]:
    """A new departure (version 1), and the document to insert: the departure with its
    DepartureRecorded outbox entry."""
    doc = {"_id": departure_id, **snapshot, "version": 1, "created_at": now, "updated_at": now}
    doc[f"{snapshot['status']}_at"] = now
    change = domain.change_of(None, snapshot) or "registered"
    entry = rt.outbox.entry(_event(doc, change, now), key=snapshot["worker_id"])
    return doc, rt.outbox.on_insert(dict(doc), [entry])


async def record_departure(*, rt: Runtime, data: DepartureIn, upsert: bool) -> tuple[Doc, str]:
    """Record a worker and a departure. Returns (departure, 'created'|'updated'|'unchanged').

    The departure id comes from its natural key (worker, departure date), so the same row
    imported twice is one record. Without `upsert`, an existing departure is a Conflict.
    """
    now = rt.clock.now()
    worker_id, identity = await _record_worker(rt, data, now)
    employer_id = await _record_parties(rt, data)
    departure_id = domain.departure_id_for(worker_id, data.departure_date)
    snapshot = departure_snapshot(data, worker_id=worker_id, identity=identity, employer_id=employer_id)
    for _ in range(5):
        current = await store.get_departure(rt.db, departure_id)
        if current is None:
            doc, stored = new_departure(rt, departure_id, snapshot, now)
            if await store.insert_departure(rt.db, stored):
                rt.relay.wake(departure_id)
                return doc, "created"
            continue  # another writer inserted it meanwhile: treat as an update
        if not upsert:
            raise Conflict("this departure is recorded already", current=current)
        outcome = await _change(rt=rt, current=current, changes=snapshot)
        if outcome is not None:
            return outcome
    raise RuntimeError("departure changed concurrently too often")


async def update_departure(
    *, rt: Runtime, departure_id: str, data: DepartureUpdate
) -> tuple[Doc, str] | None:
    """Change a departure's fields; None when it does not exist."""
    changes: Doc = {}
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, StrEnum):
            value = str(value)
        changes[name] = value
    if "departure_date" in changes:
        changes["departure_month"] = changes["departure_date"][:7]
    for _ in range(5):
        current = await store.get_departure(rt.db, departure_id)
        if current is None:
            return None
        if "employer_name" in changes:
            country = str(changes.get("destination_country") or current["destination_country"])
            changes["employer_id"] = domain.employer_id_for(changes["employer_name"], country)
            await store.ensure_party(
                rt.db,
                store.EMPLOYERS,
                changes["employer_id"],
                {"name": changes["employer_name"], "country": country},
            )
        outcome = await _change(rt=rt, current=current, changes=changes)
        if outcome is not None:
            return outcome
    raise RuntimeError("departure changed concurrently too often")


def change_to(current: Doc, changes: Doc) -> str | None:
    """What applying changes to a departure would be called; None when it changes nothing."""
    return domain.change_of(current, {**current, **changes})


async def _change(*, rt: Runtime, current: Doc, changes: Doc) -> tuple[Doc, str] | None:
    """Apply changes to a departure at its current version; None if someone changed it first."""
    now = rt.clock.now()
    merged = {**current, **changes}
    change = change_to(current, changes)
    if change is None:
        return current, "unchanged"
    old, new = DepartureStatus(current["status"]), DepartureStatus(merged["status"])
    if not domain.may_move(old, new):
        raise Conflict(f"a departure cannot go from {old} to {new}", current=current)
    merged["version"] = current["version"] + 1
    merged["updated_at"] = now
    sets = {k: v for k, v in merged.items() if k != "_id" and current.get(k) != v}
    if old != new:
        sets[f"{new}_at"] = now
        merged[f"{new}_at"] = now
    entry = rt.outbox.entry(_event(merged, change, now), key=current["worker_id"])
    update = rt.outbox.on_update({"$set": sets}, [entry])
    if not await store.update_departure(rt.db, current["_id"], current["version"], update):
        return None
    rt.relay.wake(current["_id"])
    return merged, "updated"


async def flag_party(
    *, rt: Runtime, kind: str, party_id: str, action_id: str, rule_id: str, reason: str, at: Any
) -> bool:
    """Mark an agency or employer flagged, once per escalation action."""
    collection = store.AGENCIES if kind == "agency" else store.EMPLOYERS
    flag = {"action_id": action_id, "rule_id": rule_id, "reason": reason, "requested_at": at}
    return await store.apply_once(
        rt.db,
        collection,
        party_id,
        f"flag:{action_id}",
        {"$set": {"flagged": True, "flagged_at": at}, "$push": {"flags": flag}},
    )


async def count_case(*, rt: Runtime, agency_id: str, case_id: str) -> bool:
    """Count a case opened about an agency's worker, once per case; it is open until it leaves."""
    return await store.apply_once(
        rt.db,
        store.AGENCIES,
        agency_id,
        f"case:{case_id}",
        {"$inc": {"cases_opened": 1}, "$addToSet": {"open_cases": case_id}},
    )


async def record_death(*, rt: Runtime, worker_id: str) -> tuple[Doc, str] | None:
    """A mission reported the worker's death: the worker's latest departure becomes deceased
    (with its departure event); nothing when there is none or it says so already."""
    for _ in range(5):
        departures = await store.departures_of(rt.db, worker_id)
        if not departures:
            return None
        current = departures[-1]  # the latest departure: where the worker is now
        if not domain.may_move(DepartureStatus(current["status"]), DepartureStatus.DECEASED):
            return current, "unchanged"
        outcome = await _change(rt=rt, current=current, changes={"status": DepartureStatus.DECEASED.value})
        if outcome is not None:
            return outcome
    raise RuntimeError("departure changed concurrently too often")


async def case_left_open(*, rt: Runtime, agency_id: str, case_id: str) -> bool:
    """A case about an agency's worker was resolved or closed: no longer open (counted once)."""
    return await store.case_left_open(rt.db, agency_id, case_id)


async def case_reopened(*, rt: Runtime, agency_id: str, case_id: str) -> bool:
    """A case about an agency's worker was reopened: open again."""
    return await store.case_reopened(rt.db, agency_id, case_id)


@dataclass
class Retention:
    """What one retention run did."""

    cutoff: datetime
    departures: int = 0
    workers: int = 0

    def __str__(self) -> str:
        return (
            f"retention: anonymised {self.departures} departures ended before {self.cutoff.isoformat()} "
            f"and {self.workers} workers left with no other departure"
        )


async def anonymise_ended(*, rt: Runtime, older_than: timedelta, limit: int = 1000) -> Retention:
    """Anonymise departures that ended (returned, deceased) more than `older_than` ago, and the
    workers all of whose departures are anonymised: identity removed, statistics kept.

    Each departure changes like any other (a new version, `change: anonymised`, published by the
    outbox), so intake's and repatriation's projections drop the identity too.
    """
    now = rt.clock.now()
    report = Retention(cutoff=now - older_than)
    workers: set[str] = set()
    for status in domain.ENDED:
        for doc in await store.ended_before(rt.db, str(status), report.cutoff, limit):
            if await _anonymise(rt, doc, now):
                report.departures += 1
                workers.add(doc["worker_id"])
    for worker_id in sorted(workers):
        departures = await store.departures_of(rt.db, worker_id)
        if all(d.get("anonymised_at") for d in departures):
            report.workers += await store.strip_worker(rt.db, worker_id, domain.WORKER_IDENTITY, now)
    return report


async def _anonymise(rt: Runtime, current: Doc | None, now: datetime) -> bool:
    for _ in range(5):
        if current is None or current.get("anonymised_at"):
            return False
        sets: Doc = {
            **domain.DEPARTURE_IDENTITY,
            "version": current["version"] + 1,
            "updated_at": now,
            "anonymised_at": now,
        }
        merged = {**current, **sets}
        entry = rt.outbox.entry(_event(merged, "anonymised", now), key=current["worker_id"])
        update = rt.outbox.on_update({"$set": sets}, [entry])
        if await store.update_departure(rt.db, current["_id"], current["version"], update):
            rt.relay.wake(current["_id"])
            return True
        current = await store.get_departure(rt.db, current["_id"])
    raise RuntimeError("departure changed concurrently too often")
