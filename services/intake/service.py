"""intake's service functions: accept a report (either door), project departures.

Both doors call `submit` with the same model; they differ only in how they answer a refusal
(HTTP status, or the dead-letter topic).

About 400 lines, kept as one module: `submit` and the worker links it writes are one argument
about concurrency (the order of its writes is what makes two doors and two replicas safe), and
the departure projection beside it is the match that `submit` reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

from services.intake import domain, store
from shared.events.intake import (
    IncidentAccepted,
    IncidentMatched,
    IncidentReport,
    ReportedWorker,
    WorkerMatch,
)
from shared.events.registry import DepartureRecorded, name_dob_key
from shared.logs import redact
from shared.mongo import Doc
from shared.pii import Vault
from shared.service import Runtime

log = logging.getLogger("lindungi.intake")


class Refused(Exception):
    """A report that cannot be accepted: 403 (jurisdiction) or 422 (invalid), with field reasons."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.status = status
        self.errors = errors


@dataclass(frozen=True)
class Submitter:
    """The mission a report comes from, and its jurisdiction."""

    mission_id: str
    countries: frozenset[str]


def _identity(vault: Vault, report: IncidentReport) -> domain.Identity | None:
    worker = report.worker
    if worker is None:
        return None
    name = domain.normalised(worker.full_name)
    dob = domain.dob_iso(worker.date_of_birth)
    return domain.Identity(
        worker_id=worker.worker_id,
        nik_hash=vault.lookup_hash("nik", worker.nik) if worker.nik else None,
        passport_hash=vault.lookup_hash("passport", worker.passport_number)
        if worker.passport_number
        else None,
        name=name,
        date_of_birth=dob,
        name_dob_hash=vault.lookup_hash("name_dob", name_dob_key(worker.full_name, dob))
        if worker.full_name and dob
        else None,
        name_hash=vault.lookup_hash("name", name) if name else None,
    )


def _digest(vault: Vault, report: IncidentReport) -> dict[str, str]:
    """Keyed hashes of the report's fields: comparable later, readable by no one."""
    return {k: vault.lookup_hash("report", f"{k}={v}") for k, v in domain.report_fields(report).items()}


def _repeat(first: Doc, digest: dict[str, str], *, key: str) -> Doc:
    """The first incident, when a repeat carries the same report; else refuse the repeat (422).

    A different report under a used key is a data-entry slip or a client bug: answering with the
    first incident would drop the second report without a word.
    """
    stored = first.get("report_digest")
    if stored is None:  # stored before reports were fingerprinted: nothing to compare with
        return first
    fields = domain.differing(dict(item.split("=", 1) for item in stored), digest)
    if not fields:
        return first
    field = "mission_reference" if "|ref|" in key else "Idempotency-Key"
    reason = (
        f"was already used for another report (incident {first['_id']}); this one differs in: "
        + ", ".join(fields)
        + ". Send a new report with a new key, or repeat the first one unchanged."
    )
    raise Refused(422, [{"field": field, "reason": reason}])


async def _join_group(rt: Runtime, group: str | None, report: IncidentReport, incident_id: str) -> list[str]:
    """Join the group and return its earlier reports within the link window (bounded, see domain.to_link)."""
    if not group:
        return []
    before = await store.join_link_group(rt.db, group, incident_id, report.occurred_at)
    return domain.to_link(before, report.occurred_at, own_id=incident_id)


def _refuse_unless_acceptable(submitter: Submitter, report: IncidentReport, now: datetime) -> None:
    """Refused for another mission's or country's report (403) or impossible times (422)."""
    if report.mission_id and report.mission_id != submitter.mission_id:
        raise Refused(403, [{"field": "mission_id", "reason": "a mission may report only as itself"}])
    if report.country not in submitter.countries:
        covered = ", ".join(sorted(submitter.countries))
        reason = f"{report.country} is outside this mission's jurisdiction ({covered})"
        raise Refused(403, [{"field": "country", "reason": reason}])
    errors = domain.time_errors(report, now)
    if errors:
        raise Refused(422, errors)


def _worker_doc(vault: Vault, worker: ReportedWorker, identity: domain.Identity) -> Doc:
    """The reported worker as the incident keeps them: numbers encrypted, with their keyed hashes."""
    return {
        "worker_id": worker.worker_id,
        "full_name": worker.full_name,
        "date_of_birth": identity.date_of_birth,
        "sex": worker.sex,
        "nik_enc": vault.encrypt("nik", worker.nik) if worker.nik else None,
        "nik_hash": identity.nik_hash,
        "passport_enc": vault.encrypt("passport", worker.passport_number) if worker.passport_number else None,
        "passport_hash": identity.passport_hash,
        "name_dob_hash": identity.name_dob_hash,
        "phone_enc": vault.encrypt("phone", worker.phone) if worker.phone else None,
    }


async def _link_both_ways(
    rt: Runtime,
    incident_id: str,
    report: IncidentReport,
    group: str | None,
    earlier: list[str],
    *,
    field: str,
) -> None:
    """Once the incident is stored: link the earlier reports of its group back to it, and link it
    to the reports that joined the group after it (they may have looked before it was stored)."""
    if not group:
        return
    await store.link_back(rt.db, earlier, incident_id, field=field)
    later = await store.joined_after(rt.db, group, incident_id)
    forward = domain.to_link(later, report.occurred_at, own_id=incident_id)
    await store.add_links(rt.db, incident_id, forward, field=field)


async def submit(
    *,
    rt: Runtime,
    submitter: Submitter,
    report: IncidentReport,
    idempotency_key: str | None,
    via: Literal["http", "kafka"],
    message_id: str | None = None,
) -> tuple[Doc, bool]:
    """Accept a report: (incident, True) if it is new, (the first incident, False) if a repeat.

    Raises Refused for another mission's or country's report (403) or impossible times (422).
    Nothing is stored unless the report is accepted; the incident and its IncidentAccepted
    event are one document write.

    Longer than 60 lines on purpose: the order of its steps is the concurrency argument (look
    up the dedup keys, match, claim the keys, join the link groups, one insert, then link both
    ways) and reads best top to bottom in one place; the steps without ordering concerns are
    helpers (_refuse_unless_acceptable, _worker_doc, _link_both_ways).
    """
    now = rt.clock.now()
    _refuse_unless_acceptable(submitter, report, now)

    ref_key, idem_key = domain.dedup_keys(
        mission_id=submitter.mission_id,
        mission_reference=report.mission_reference,
        idempotency_key=idempotency_key,
        message_id=message_id,
    )
    keys = [dedup_key for dedup_key in (ref_key, idem_key) if dedup_key]
    incident_id = domain.incident_id_for(ref_key, idem_key)
    digest = _digest(rt.vault, report)
    for dedup_key in keys:
        holder = await store.claimed(rt.db, dedup_key)
        if holder is not None:
            first = await store.get(rt.db, holder)
            if first is not None:
                return _repeat(first, digest, key=dedup_key), False
            incident_id = holder  # claimed but not stored yet (in flight, or a crash): finish it
            break

    identity = _identity(rt.vault, report)
    match, departure = WorkerMatch(), None
    if identity is not None:
        found = await store.candidates(rt.db, domain.lookup_keys(identity))
        match, departure = domain.match_worker(identity, found, country=report.country)

    # Claim the dedup keys before storing: a concurrent repeat then converges on one incident id.
    for dedup_key in keys:
        holder = await store.claim(rt.db, dedup_key, incident_id)
        if holder != incident_id:
            first = await store.get(rt.db, holder)
            if first is not None:
                return _repeat(first, digest, key=dedup_key), False
            incident_id = holder

    key = domain.worker_key(match, identity, incident_id)
    group = domain.link_group(key, str(report.category))
    suggest = domain.suggestion_group(identity, key, str(report.category))
    # Joining the group before storing makes simultaneous reports see each other (one of them
    # joins second and links the first).
    linked = await _join_group(rt, group, report, incident_id)
    suggested = await _join_group(rt, suggest, report, incident_id)
    agency_id = (report.agency.agency_id if report.agency else None) or (departure or {}).get("agency_id")
    employer_name = (report.employer.name if report.employer else None) or (departure or {}).get(
        "employer_name"
    )
    worker = report.worker
    event = IncidentAccepted(
        incident_id=incident_id,
        mission_id=submitter.mission_id,
        country=report.country,
        # Identifiers pasted into free text are masked: they must not travel or rest in clear.
        place=redact(report.place) if report.place else None,
        category=report.category,
        severity=report.severity,
        occurred_at=report.occurred_at,
        reported_at=report.reported_at or now,
        narrative=redact(report.narrative),
        people_affected=report.people_affected,
        worker_key=key,
        worker_name=(worker.full_name if worker else None) or (departure or {}).get("full_name"),
        match=match,
        agency_id=agency_id,
        employer_name=employer_name,
        mission_reference=report.mission_reference,
        linked_incident_ids=linked,
        suggested_incident_ids=suggested,
        departure_id=(departure or {}).get("_id"),
        received_via=via,
    )
    worker_doc = None
    if worker is not None and identity is not None:
        worker_doc = _worker_doc(rt.vault, worker, identity)
    doc: Doc = {
        "_id": incident_id,
        **event.model_dump(mode="python", exclude={"incident_id"}),
        "status": "accepted",
        "non_procedural": match.non_procedural,
        "worker": worker_doc,
        "agency": report.agency.model_dump() if report.agency else None,
        "employer": report.employer.model_dump() if report.employer else None,
        "reporter": report.reporter.model_dump() if report.reporter else None,
        "received_at": now,
        "time_offsets": domain.offsets(report),  # times read back as the mission wrote them
        "ref_key": ref_key,
        "idem_key": idem_key,
        # "field=hash" strings: field names hold dots, which MongoDB keys may not.
        "report_digest": [f"{field}={value}" for field, value in sorted(digest.items())],
    }
    entry = rt.outbox.entry(event, key=key, subject=incident_id)
    if not await store.insert(rt.db, rt.outbox.on_insert(doc, [entry])):
        first = await store.get(rt.db, incident_id)
        if first is None:
            raise RuntimeError("incident insert collided with nothing we can find")
        return _repeat(first, digest, key=ref_key or idem_key or ""), False
    rt.relay.wake(incident_id)
    if match.non_procedural and identity is not None and domain.unmatched_keys(identity):
        # File it for the worker's departure to find, then look once more: a departure projected
        # between our lookup and this line would otherwise miss it, and it us.
        await store.wait_for_departure(rt.db, domain.unmatched_keys(identity), incident_id)
        await rematch(rt=rt, incident_id=incident_id, incident=doc)
    await _link_both_ways(rt, incident_id, report, group, linked, field="linked_incident_ids")
    await _link_both_ways(rt, incident_id, report, suggest, suggested, field="suggested_incident_ids")
    log.info(
        "incident accepted via %s (match: %s, linked: %d, suggested: %d)",
        via,
        match.method,
        len(linked),
        len(suggested),
        extra={"incident_id": incident_id},
    )
    doc.pop("_outbox", None)
    doc.pop("_outbox_pending", None)
    return doc, True


async def project(*, db: AsyncDatabase[Doc], event: DepartureRecorded) -> bool:
    """Keep intake's own copy of a departure for matching (highest version wins)."""
    fields: dict[str, Any] = {
        "worker_id": event.worker_id,
        "status": str(event.status),
        "full_name": event.full_name,
        "name_norm": domain.normalised(event.full_name),
        "date_of_birth": domain.dob_iso(event.date_of_birth),
        "nik_hash": event.nik_hash,
        "passport_hash": event.passport_hash,
        "name_dob_hash": event.name_dob_hash,
        "destination_country": event.destination_country,
        "agency_id": event.agency_id,
        "employer_id": event.employer_id,
        "employer_name": event.employer_name,
        "departure_date": domain.dob_iso(event.departure_date),
        "recorded_at": event.recorded_at,
        "home_province": event.home_province,
    }
    keys = domain.departure_keys(
        worker_id=event.worker_id,
        nik_hash=event.nik_hash,
        passport_hash=event.passport_hash,
        date_of_birth=fields["date_of_birth"],
    )
    return await store.project_departure(db, event.departure_id, event.version, fields, keys)


async def forget(*, rt: Runtime, incident_ids: list[str], at: Any) -> int:
    """Anonymise the incidents of a case casework anonymised (retention); how many changed."""
    changed = 0
    for incident_id in incident_ids:
        changed += await store.anonymise(
            rt.db, incident_id, {**domain.ANONYMISED_FIELDS, "anonymised_at": at}
        )
    if changed:
        log.info("retention: anonymised %d incidents of an anonymised case", changed)
    return changed


async def match_waiting(*, rt: Runtime, event: DepartureRecorded) -> int:
    """Late matching: reports accepted before this departure reached us are matched now.

    Run after `project` by the consumer (a replay of the projection matches nothing).
    """
    waiting = domain.unmatched_keys(
        domain.Identity(
            worker_id=event.worker_id,
            nik_hash=event.nik_hash,
            passport_hash=event.passport_hash,
            name_dob_hash=event.name_dob_hash,
        )
    )
    matched = 0
    for incident_id in await store.waiting(rt.db, waiting):
        matched += await rematch(rt=rt, incident_id=incident_id)
    return matched


async def rematch(*, rt: Runtime, incident_id: str, incident: Doc | None = None) -> bool:
    """Match an incident accepted unmatched against the departures known now; True if it matched now.

    The incident takes the match in one conditional write with its IncidentMatched event, so a
    redelivered departure (or two replicas) match it once. `incident`: the incident as its caller
    has just stored it, or None to read it; stale only if a departure matched it meanwhile, and
    then that conditional write is the one that refuses.
    """
    doc = incident if incident is not None else await store.get(rt.db, incident_id)
    if doc is None or (doc.get("match") or {}).get("worker_id"):
        return False
    identity = domain.stored_identity(doc.get("worker"))
    if identity is None:
        return False
    found = await store.candidates(rt.db, domain.lookup_keys(identity))
    match, departure = domain.match_worker(identity, found, country=doc["country"])
    if departure is None or match.worker_id is None:
        return False
    event = IncidentMatched(
        incident_id=incident_id,
        worker_key=doc["worker_key"],
        match=match,
        departure_id=departure["_id"],
        agency_id=doc.get("agency_id") or departure.get("agency_id"),
        employer_name=doc.get("employer_name") or departure.get("employer_name"),
        worker_name=doc.get("worker_name") or departure.get("full_name"),
        home_province=departure.get("home_province"),
        matched_at=rt.clock.now(),
        country=doc.get("country"),
        category=doc.get("category"),
    )
    update = {
        "$set": {
            "match": match.model_dump(mode="python"),
            "non_procedural": False,
            "departure_id": event.departure_id,
            "agency_id": event.agency_id,
            "employer_name": event.employer_name,
            "worker_name": event.worker_name,
            "matched_at": event.matched_at,
        }
    }
    entry = rt.outbox.entry(event, key=doc["worker_key"], subject=incident_id)
    # The worker's later reports are keyed by the worker id: the incident joins that link group
    # too (before the match is stored, so a crash between the two cannot leave it outside; a
    # repeated join is read once), and links the worker's reports already in it.
    group = domain.link_group(match.worker_id, str(doc["category"]))
    earlier: list[str] = []
    if group and group != domain.link_group(doc["worker_key"], str(doc["category"])):
        before = await store.join_link_group(rt.db, group, incident_id, doc["occurred_at"])
        earlier = domain.to_link(before, doc["occurred_at"], own_id=incident_id)
    if not await store.set_match(rt.db, incident_id, rt.outbox.on_update(update, [entry])):
        return False
    rt.relay.wake(incident_id)
    if earlier:
        await store.link_back(rt.db, earlier, incident_id)
        await store.add_links(rt.db, incident_id, earlier, field="linked_incident_ids")
    await store.done_waiting(rt.db, domain.unmatched_keys(identity), incident_id)
    log.info("incident matched late (match: %s)", match.method, extra={"incident_id": incident_id})
    return True
