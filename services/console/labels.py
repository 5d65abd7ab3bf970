"""The words for the services' values (statuses, categories, steps), as catalog message ids."""

from __future__ import annotations

from services.console.i18n import N_

CATEGORIES: dict[str, str] = {
    "unpaid_wages": N_("Unpaid wages"),
    "wants_to_go_home": N_("Wants to go home"),
    "illness": N_("Illness"),
    "injury": N_("Injury or work accident"),
    "death": N_("Death"),
    "physical_abuse": N_("Physical abuse"),
    "sexual_abuse": N_("Sexual abuse"),
    "psychological_abuse": N_("Psychological abuse"),
    "documents_withheld": N_("Passport or documents withheld"),
    "contract_mismatch": N_("Contract not as agreed"),
    "unilateral_dismissal": N_("Unilateral dismissal"),
    "overcharged_fees": N_("Overcharged placement fees"),
    "lost_contact": N_("Lost contact or missing"),
    "detained": N_("Detained or arrested"),
    "legal_case": N_("Legal case"),
    "trafficking": N_("Trafficking indicators"),
    "undocumented": N_("Undocumented, overstay or deportation"),
    "evacuation": N_("Disaster or conflict (evacuation)"),
}
SEVERITIES: dict[str, str] = {
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
    "critical": N_("Critical"),
}
OTHER: dict[str, str] = {
    # case statuses
    "new": N_("new"),
    "triaged": N_("triaged"),
    "assigned": N_("assigned"),
    "in_progress": N_("in progress"),
    "awaiting_repatriation": N_("awaiting repatriation"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    # requests, chains, workflows, steps' states
    "open": N_("open"),
    "answered": N_("answered"),
    "pending": N_("pending"),
    "active": N_("active"),
    "done": N_("done"),
    "skipped": N_("skipped"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "completed": N_("completed"),
    "superseded": N_("superseded"),
    # notifications' outcomes (failed is above)
    "sent": N_("sent"),
    "withdrawn": N_("withdrawn"),
    "waiting": N_("waiting"),
    # repatriation kinds
    "living": N_("living worker"),
    "remains": N_("remains"),
    # queue kinds and regions
    "general": N_("general"),
    "asean": N_("ASEAN"),
    "east_asia": N_("East Asia"),
    "middle_east": N_("Middle East"),
    "europe": N_("Europe"),
    "other": N_("Other countries"),
    # evacuees
    "unaccounted": N_("unaccounted"),
    "located": N_("located"),
    "safe": N_("safe"),
    "in_transit": N_("in transit"),
    "home": N_("home"),
    # workflow steps
    "requested": N_("requested"),
    "travel_document": N_("travel document"),
    "exit_clearance": N_("exit clearance"),
    "fit_to_travel": N_("fit to travel"),
    "funding_approved": N_("funding approved"),
    "travel_booked": N_("travel booked"),
    "departed": N_("departed"),
    "arrived": N_("arrived"),
    "onward_transport": N_("onward transport"),
    "handed_over": N_("handed over"),
    "region_notified": N_("home region notified"),
    "death_reported": N_("death reported"),
    "death_certificate_and_documents": N_("death certificate and documents"),
    "cargo_booked": N_("cargo booked"),
    "arrived_cargo_terminal": N_("arrived at the cargo terminal"),
    "transported_home": N_("transported home"),
    "listed": N_("workers listed"),
    "workers_located": N_("workers located"),
    "evacuation_transport": N_("evacuation transport"),
    "airport": N_("airport"),
    "arrivals_received": N_("arrivals received"),
    # timeline entries
    "opened": N_("opened"),
    "incident_linked": N_("incident linked"),
    "worker_matched": N_("worker matched to a departure record"),
    "repatriation_home_province_set": N_("home province set"),
    "home_province_set": N_("home province set"),
    "claimed": N_("claimed"),
    "acknowledged": N_("acknowledged"),
    "released": N_("released"),
    "reassigned": N_("reassigned"),
    "note": N_("note"),
    "tagged": N_("tagged"),
    "priority_changed": N_("priority changed"),
    "escalated": N_("escalated"),
    "mission_request": N_("request to the mission"),
    "mission_answer": N_("answer from the mission"),
    "reopened": N_("reopened"),
    "repatriation": N_("repatriation"),
    "investigation": N_("investigation"),
    # who owns a repatriation step
    "desk": N_("desk"),
    "mission": N_("mission"),
    "debarkation": N_("debarkation unit"),
    "region": N_("province office"),
    "system": N_("system"),
    # what completing a repatriation step asks for (the plans' `requires`), and its values
    "document": N_("Travel document"),
    "passport": N_("passport"),
    "splp": N_("SPLP (travel document in lieu of passport)"),
    "employer_release": N_("Employer has released the worker"),
    "wages_settled": N_("Wages settled"),
    "immigration": N_("Immigration cleared"),
    "payer": N_("Who pays"),
    "state": N_("the state"),
    "agency": N_("the placement agency"),
    "employer": N_("the employer"),
    "insurer": N_("the insurer"),
    "recoverable": N_("Cost recoverable from the party at fault"),
    "flight": N_("Flight"),
    "arrival_at": N_("Arrival time"),
    "debarkation_point": N_("Debarkation point"),
    "escort": N_("Escort needed"),
    "received_by": N_("Received by"),
    "family": N_("family"),
    "social_affairs": N_("social affairs office"),
    "witness": N_("Witness"),
}
LABELS: dict[str, str] = {**CATEGORIES, **SEVERITIES, **OTHER}

# The buttons of the case page: the services' action names and what the button says.
ACTIONS: dict[str, str] = {
    "triage": N_("Triage"),
    "claim": N_("Claim"),
    "acknowledge": N_("Acknowledge"),
    "release": N_("Release"),
    "reassign": N_("Reassign"),
    "awaiting-repatriation": N_("Awaiting repatriation"),
    "resolve": N_("Resolve"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "notes": N_("Add a note"),
    "tags": N_("Add a tag"),
    "mission-requests": N_("Ask the mission"),
    "priority": N_("Change priority"),
    "escalate": N_("Escalate"),
    "unmerge": N_("Undo the merge"),
    "confirm": N_("Same person: merge into this case"),
    "reject": N_("Another person: reject the link"),
}

# The forms on a repatriation's current step: the service's step actions and what the button says.
STEP_ACTIONS: dict[str, str] = {
    "complete": N_("Complete step"),
    "fail": N_("Report step failed"),
    "retry": N_("Retry step"),
    "skip": N_("Skip step"),
}
WORKFLOW_ACTIONS: dict[str, str] = {
    "reroute": N_("Re-route"),
    "cancel": N_("Cancel the repatriation"),
    "home-province": N_("Set the home province"),
}
# What a repatriation page may report as done (a step action, or a re-route or cancel).
REPATRIATION_ACTIONS = {**STEP_ACTIONS, **WORKFLOW_ACTIONS}
