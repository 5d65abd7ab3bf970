"""Requests from the desk to a case's mission, and the mission's answers (its inbox is the cases
with a request it has not answered: `awaiting_missions`). No event: missions read their inbox
through casework's API (docs/events.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.casework import domain
from services.casework.changes import CaseUpdate, InvalidField, NotFound, change, entry, push_timeline
from shared.auth import load_directory
from shared.errors import Conflict
from shared.mongo import Doc, merge_updates
from shared.service import Runtime


def request_update(
    doc: Doc, *, now: datetime, request_id: str, mission_id: str | None, text: str, actor: str
) -> CaseUpdate:
    """A request to the case's mission (or to `mission_id`, which must serve the case's country)."""
    if not domain.is_open(doc["status"]):
        raise Conflict("requests go out only for open cases", status=doc["status"])
    directory = load_directory()
    to = mission_id or doc["mission_id"]
    if mission_id is not None:
        serving = directory.missions.get(to)
        if serving is None or doc["country"].upper() not in serving.countries:
            raise InvalidField("mission_id", f"no mission {to} serves {doc['country']}")
    if to not in directory.missions:
        raise Conflict(f"the case's mission {to} is not in the directory", status=doc["status"])
    req = {
        "request_id": request_id,
        "mission_id": to,
        "text": text,
        "by": actor,
        "sent_at": now,
        "status": "open",
    }
    tl = entry(at=now, kind="mission_request", by=actor, reason=text, request_id=request_id, mission_id=to)
    return CaseUpdate(
        merge_updates(
            {"$set": {f"mission_requests.{request_id}": req, "updated_at": now}},
            push_timeline(tl),
            {"$addToSet": {"awaiting_missions": to}},  # the mission's inbox
        )
    )


def answer_update(doc: Doc, *, now: datetime, request_id: str, mission_id: str, text: str) -> CaseUpdate:
    """The mission's answer to one of its open requests; the case leaves its inbox with the last."""
    requests = doc.get("mission_requests") or {}
    req = requests.get(request_id)
    if req is None or req["mission_id"] != mission_id:
        raise NotFound(request_id)
    if req["status"] != "open":
        raise Conflict("this request was answered already", status=doc["status"])
    tl = entry(at=now, kind="mission_answer", by=mission_id, reason=text, request_id=request_id)
    prefix = f"mission_requests.{request_id}"
    others_open = any(
        r["mission_id"] == mission_id and r["status"] == "open" and r["request_id"] != request_id
        for r in requests.values()
    )
    return CaseUpdate(
        merge_updates(
            {
                "$set": {
                    f"{prefix}.status": "answered",
                    f"{prefix}.answer": text,
                    f"{prefix}.answered_at": now,
                    "updated_at": now,
                }
            },
            push_timeline(tl),
            {} if others_open else {"$pull": {"awaiting_missions": mission_id}},
        ),
        [],
        {f"{prefix}.status": "open"},
    )


async def request_mission(
    rt: Runtime, case_id: str, *, mission_id: str | None, text: str, actor: str
) -> tuple[str, Doc]:
    """Send a request to a mission; the new request's id and the case after it."""
    request_id = uuid.uuid4().hex
    now = rt.clock.now()
    after = await change(
        rt,
        case_id,
        lambda doc: request_update(
            doc, now=now, request_id=request_id, mission_id=mission_id, text=text, actor=actor
        ),
    )
    return request_id, after


async def answer_request(rt: Runtime, case_id: str, request_id: str, *, mission_id: str, text: str) -> Doc:
    """Record a mission's answer; the case after it."""
    now = rt.clock.now()
    return await change(
        rt,
        case_id,
        lambda doc: answer_update(doc, now=now, request_id=request_id, mission_id=mission_id, text=text),
    )
