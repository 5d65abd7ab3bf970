"""intake's rules, plain Python: time checks, incident ids and dedup keys, worker matching, linking."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from difflib import SequenceMatcher
from typing import Any

from shared.events.intake import IncidentReport, MatchMethod, WorkerMatch
from shared.events.registry import normalise_name
from shared.mongo import Doc
from shared.retention import ANONYMISED

NS = uuid.UUID("3c9d7a52-8e41-4b6f-a0d3-5f2e1b7c9a84")

CLOCK_SKEW = timedelta(minutes=5)  # a mission's clock may run this far ahead of ours
OLDEST_INCIDENT = timedelta(days=365 * 20)
LINK_WINDOW = timedelta(hours=72)  # reports of one worker and category this close are one event
MAX_BODY_BYTES = 64 * 1024
FUZZY_THRESHOLD = 0.85  # name similarity (same date of birth) below which we do not match
NAME_DOB_CONFIDENCE = 0.9  # exact normalised name + date of birth: likely, not certain
MAX_LINKS = 10  # links a new report makes (and updates) at most, whatever the group's size
UNIDENTIFIED = "unidentified-"  # worker key of a report that names its worker by name alone


def time_errors(report: IncidentReport, now: datetime) -> list[dict[str, str]]:
    """Field errors for times that cannot be true (future beyond clock skew, implausibly old)."""
    errors = []
    latest = now + CLOCK_SKEW
    if report.occurred_at > latest:
        errors.append({"field": "occurred_at", "reason": "is in the future"})
    elif report.occurred_at < now - OLDEST_INCIDENT:
        errors.append({"field": "occurred_at", "reason": "is more than 20 years ago"})
    if report.reported_at is not None and report.reported_at > latest:
        errors.append({"field": "reported_at", "reason": "is in the future"})
    if report.worker and report.worker.date_of_birth and report.worker.date_of_birth > now.date():
        errors.append({"field": "worker.date_of_birth", "reason": "is in the future"})
    return errors


def dedup_keys(
    *, mission_id: str, mission_reference: str | None, idempotency_key: str | None, message_id: str | None
) -> tuple[str | None, str | None]:
    """(reference key, idempotency key) that make a repeated report the same incident.

    On the Kafka door without a key, the message id stands in: a redelivery is a repeat.
    """
    ref = f"{mission_id}|ref|{mission_reference}" if mission_reference else None
    if idempotency_key:
        key = f"{mission_id}|key|{idempotency_key}"
    elif message_id:
        key = f"{mission_id}|msg|{message_id}"
    else:
        key = None
    return ref, key


def incident_id_for(ref_key: str | None, idem_key: str | None) -> str:
    """Derived from the dedup key when there is one (a retry computes the same id), else random."""
    basis = ref_key or idem_key
    return uuid.uuid5(NS, basis).hex if basis else uuid.uuid4().hex


def report_fields(report: IncidentReport) -> dict[str, str]:
    """Each field of a report as sent, one level deep ('worker.full_name'), as canonical JSON.

    A repeat under the same Idempotency-Key or mission reference must carry the same fields;
    comparing field by field lets the refusal name what differs.
    """
    out: dict[str, str] = {}
    for name, value in report.model_dump(mode="json", exclude={"mission_id"}).items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{name}.{sub}"] = json.dumps(inner, sort_keys=True)
        else:
            out[name] = json.dumps(value, sort_keys=True)
    return {k: v for k, v in out.items() if v != "null"}


def differing(first: dict[str, str], again: dict[str, str]) -> list[str]:
    """The fields in which a repeated report differs from the first (by their digests)."""
    return sorted(k for k in first.keys() | again.keys() if first.get(k) != again.get(k))


@dataclass(frozen=True)
class Identity:
    """What the mission knows of the worker, as keyed hashes and normalised text."""

    worker_id: str | None = None
    nik_hash: str | None = None
    passport_hash: str | None = None
    name: str | None = None  # normalised
    date_of_birth: str | None = None  # ISO
    name_dob_hash: str | None = None
    name_hash: str | None = None


def name_similarity(a: str, b: str, *, at_least: float = 0.0) -> float:
    """Similarity of two normalised names, forgiving word order (0..1); 0.0 below `at_least`.

    A name compared only where it can reach `at_least`: difflib's upper bounds of a ratio (the
    lengths, then the letters in common) rule out most names of a date of birth in a few
    microseconds each, where the ratio itself costs about a hundred (a national year files a few
    dozen departures under each date, and every report with a date of birth compares them all).
    The answer is the same as comparing every name whenever it is at least `at_least`.
    """
    if not a or not b:
        return 0.0
    best = 0.0
    for x, y in ((a, b), (" ".join(sorted(a.split())), " ".join(sorted(b.split())))):
        pair = SequenceMatcher(None, x, y)
        if pair.real_quick_ratio() >= at_least and pair.quick_ratio() >= at_least:
            best = max(best, pair.ratio())
    return best if best >= at_least else 0.0


def _prefer(candidates: list[dict[str, Any]], country: str) -> dict[str, Any]:
    """Of a worker's departures, the one in the incident's country, else the latest."""
    return max(
        candidates,
        key=lambda d: (
            d.get("destination_country") == country,
            d.get("departure_date") or "",
            d.get("version", 0),
        ),
    )


def match_worker(
    identity: Identity, candidates: list[dict[str, Any]], *, country: str
) -> tuple[WorkerMatch, dict[str, Any] | None]:
    """Match a reported worker to the departure projection.

    Exact by worker id, NIK or passport keyed hash (confidence 1); else normalised name with
    date of birth (exact: 0.9; similar names: 0.9 x similarity, above a threshold). No match
    means non-procedural.
    """
    exact = (
        (MatchMethod.WORKER_ID, "worker_id", identity.worker_id),
        (MatchMethod.NIK, "nik_hash", identity.nik_hash),
        (MatchMethod.PASSPORT, "passport_hash", identity.passport_hash),
    )
    for method, field, value in exact:
        if value:
            hits = [c for c in candidates if c.get(field) == value]
            if hits:
                best = _prefer(hits, country)
                return WorkerMatch(
                    worker_id=best["worker_id"], method=method, confidence=1.0, non_procedural=False
                ), best
    if identity.name and identity.date_of_birth:
        same_dob = [c for c in candidates if c.get("date_of_birth") == identity.date_of_birth]
        similar = (
            (name_similarity(identity.name, c.get("name_norm") or "", at_least=FUZZY_THRESHOLD), c)
            for c in same_dob
        )
        scored = [(s, c) for s, c in similar if s >= FUZZY_THRESHOLD]
        if scored:
            top = max(s for s, _ in scored)
            best = _prefer([c for s, c in scored if s == top], country)
            confidence = round(NAME_DOB_CONFIDENCE * top, 3)
            return WorkerMatch(
                worker_id=best["worker_id"],
                method=MatchMethod.NAME_DOB,
                confidence=confidence,
                non_procedural=False,
            ), best
    return WorkerMatch(), None


def worker_key(match: WorkerMatch, identity: Identity | None, incident_id: str) -> str:
    """The key of the worker an incident is about: the worker id when matched, else a keyed hash.

    Only what identifies a person counts: NIK, passport, or name with date of birth. Indonesian
    names repeat (Siti, Nur, Muhammad...) and many people have one name only, so a report that
    names a worker by name alone is keyed to itself: it joins no one's case, and at most
    suggests a link (suggestion_group) for the desk to confirm.
    """
    if match.worker_id:
        return match.worker_id
    if identity is None:
        return f"group-{incident_id}"  # a group report without a named worker links to nothing
    for digest in (identity.nik_hash, identity.passport_hash, identity.name_dob_hash):
        if digest:
            return digest[:32]
    return f"{UNIDENTIFIED}{incident_id}"


def _filed_keys(identity: Identity, *more: tuple[str, str | None]) -> list[str]:
    """`kind:value` keys of the worker id, NIK and passport hashes, then `more`, skipping blanks."""
    pairs = (
        ("worker", identity.worker_id),
        ("nik", identity.nik_hash),
        ("passport", identity.passport_hash),
        *more,
    )
    return [f"{kind}:{value}" for kind, value in pairs if value]


def lookup_keys(identity: Identity) -> list[str]:
    """The projection keys under which the reported worker's departures may be filed."""
    return _filed_keys(identity, ("dob", identity.date_of_birth))


def departure_keys(
    *, worker_id: str, nik_hash: str | None, passport_hash: str | None, date_of_birth: str | None
) -> list[str]:
    """The keys a projected departure is filed under (the same shapes as lookup_keys)."""
    return lookup_keys(
        Identity(
            worker_id=worker_id, nik_hash=nik_hash, passport_hash=passport_hash, date_of_birth=date_of_birth
        )
    )


def unmatched_keys(identity: Identity) -> list[str]:
    """The keys under which an unmatched report waits for its worker's departure (late matching).

    Only what identifies a person: a departure filed later under one of them re-checks the report.
    """
    return _filed_keys(identity, ("name_dob", identity.name_dob_hash))


def stored_identity(worker: Doc | None) -> Identity | None:
    """The identity of a stored incident's worker (keyed hashes as intake keeps them)."""
    if not worker:
        return None
    return Identity(
        worker_id=worker.get("worker_id"),
        nik_hash=worker.get("nik_hash"),
        passport_hash=worker.get("passport_hash"),
        name=normalised(worker.get("full_name")),
        date_of_birth=worker.get("date_of_birth"),
        name_dob_hash=worker.get("name_dob_hash"),
    )


def link_group(worker_key: str, category: str) -> str | None:
    """The group of reports that may be one event: same worker, same category (none for groups)."""
    if worker_key.startswith(("group-", UNIDENTIFIED)):
        return None
    return f"{worker_key}|{category}"


def suggestion_group(identity: Identity | None, worker_key: str, category: str) -> str | None:
    """Reports naming a worker by the same name alone, same category: a link to suggest, never to make.

    It crosses countries on purpose (a worker moves; a mission may report from a neighbour):
    a suggestion only shows the desk the other report, and joins nothing.
    """
    if identity is None or not identity.name_hash or not worker_key.startswith(UNIDENTIFIED):
        return None
    return f"name|{identity.name_hash[:32]}|{category}"


def to_link(items: list[dict[str, Any]], occurred_at: datetime, *, own_id: str) -> list[str]:
    """Earlier reports within the window of this one's occurrence: the same event.

    Bounded: the first report in the window and the most recent others, MAX_LINKS in all, so a
    report costs the same in a group of 200 as in a group of 2 (each later report links to the
    first, so the group stays connected).
    """
    lo, hi = occurred_at - LINK_WINDOW, occurred_at + LINK_WINDOW
    ids = list(  # a retried report may have joined twice: once each
        dict.fromkeys(
            i["incident_id"]
            for i in items
            if i["incident_id"] != own_id and lo <= _aware(i["occurred_at"], occurred_at) <= hi
        )
    )
    if len(ids) <= MAX_LINKS:
        return ids
    return [ids[0], *ids[-(MAX_LINKS - 1) :]]


def offsets(report: IncidentReport) -> dict[str, str]:
    """The UTC offsets the mission wrote its times in ('+09:00'), kept beside the UTC instants."""
    out = {}
    for name in ("occurred_at", "reported_at"):
        value = getattr(report, name)
        if value is not None and value.utcoffset() is not None:
            out[name] = value.isoformat()[-6:] if value.utcoffset() else "+00:00"
    return out


def with_offsets(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored incident with its times back in the offsets the mission sent them in."""
    kept = doc.get("time_offsets") or {}
    if not kept:
        return doc
    out = dict(doc)
    for name, offset in kept.items():
        value = out.get(name)
        if isinstance(value, datetime):
            sign = -1 if offset.startswith("-") else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
            out[name] = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    return out


def _aware(dt: datetime, like: datetime) -> datetime:
    """MongoDB may hand back naive UTC; compare like with like."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def dob_iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def normalised(name: str | None) -> str | None:
    return normalise_name(name) if name else None


# Retention: what an incident of a case anonymised by casework keeps. The narrative, the place,
# the worker's name and identifiers (ciphertexts and hashes), the reporter and the report's
# field digests go; country, category, severity, times, the mission and the match stay.
ANONYMISED_FIELDS: dict[str, Any] = {
    "narrative": ANONYMISED,
    "place": None,
    "worker_name": ANONYMISED,
    "worker": None,
    "reporter": None,
    "report_digest": None,
}
