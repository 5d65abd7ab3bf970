"""registry's read models: departures, workers and parties as the HTTP side answers them.

A worker's NIK, passport and phone numbers are decrypted here and masked unless the caller may
and did ask for them unmasked; such a read is recorded in the read audit before it is answered.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from services.registry import domain, store
from services.registry.models import DepartureOut, NextOfKinOut, PartyOut, WorkerOut
from shared import audit
from shared.auth import Principal
from shared.mongo import Doc
from shared.service import Runtime


def departure_out(doc: Doc) -> DepartureOut:
    """A stored departure as answered."""
    return DepartureOut(departure_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def party_out(kind: Literal["agency", "employer"], doc: Doc) -> PartyOut:
    """A stored agency or employer as answered, with the number of its cases still open."""
    fields = {k: v for k, v in doc.items() if k in PartyOut.model_fields}
    return PartyOut(id=doc["_id"], kind=kind, cases_open=len(doc.get("open_cases") or []), **fields)


def departure_query(
    *,
    province: str | None,
    filters: dict[str, Any],
    departed_from: date | None,
    departed_to: date | None,
) -> dict[str, Any]:
    """The departures filter: home province by its canonical name, the other fields as given
    (None means any), departure dates within [departed_from, departed_to]."""
    query: dict[str, Any] = {}
    if province:
        query["home_province"] = domain.canonical_province(province) or province
    for key, value in filters.items():
        if value is not None:
            query[key] = str(value)
    if departed_from or departed_to:
        date_range = {}
        if departed_from:
            date_range["$gte"] = departed_from.isoformat()
        if departed_to:
            date_range["$lte"] = departed_to.isoformat()
        query["departure_date"] = date_range
    return query


async def _record_unmasked_read(
    rt: Runtime, doc: Doc, *, principal: Principal, purpose: str | None, via: str
) -> None:
    """Record in the read audit which of the worker's numbers are about to be shown unmasked."""
    shown_fields = [
        name
        for name, present in (
            ("nik", doc.get("nik_enc")),
            ("passport_number", doc.get("passport_enc")),
            ("phone", doc.get("phone_enc")),
            ("next_of_kin.phone", (doc.get("next_of_kin") or {}).get("phone")),
        )
        if present
    ]
    if shown_fields:
        await audit.record(
            rt.db,
            service="registry",
            worker_id=doc["_id"],
            actor=principal,
            fields=shown_fields,
            purpose=purpose,
            via=via,
            at=rt.clock.now(),
        )


async def worker_out(
    rt: Runtime,
    doc: Doc,
    *,
    full: bool,
    principal: Principal,
    purpose: str | None,
    via: str,
) -> WorkerOut:
    """A worker with departures; identifiers masked unless `full` (then the read is recorded in
    the read audit first)."""
    vault = rt.vault
    if full:
        await _record_unmasked_read(rt, doc, principal=principal, purpose=purpose, via=via)

    def shown(kind: str, field: str) -> str | None:
        token = doc.get(field)
        if not token:
            return None
        clear = vault.decrypt(kind, token)
        return clear if full else domain.mask(clear)

    kin = doc.get("next_of_kin")
    if kin and kin.get("phone"):
        kin = {**kin, "phone": vault.decrypt("phone", kin["phone"]) if full else "[hidden]"}
    return WorkerOut(
        worker_id=doc["_id"],
        full_name=doc["full_name"],
        date_of_birth=doc["date_of_birth"],
        sex=doc.get("sex"),
        nik=shown("nik", "nik_enc"),
        passport_number=shown("passport", "passport_enc"),
        home_province=doc["home_province"],
        home_regency=doc.get("home_regency"),
        phone=shown("phone", "phone_enc"),
        next_of_kin=NextOfKinOut(**kin) if kin else None,
        departures=[departure_out(d) for d in await store.departures_of(rt.db, doc["_id"])],
    )
