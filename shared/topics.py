"""The topic catalog: every topic's name, key, event types and owner, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    key: str  # the aggregate whose events keep their order
    owner: str
    description: str

    @property
    def dlq(self) -> str:
        """The dead-letter topic of this topic."""
        return f"{self.name}.dlq"


DEPARTURES = Topic(
    "registry.departures.v1",
    "worker_id",
    "registry",
    "Departure events: a worker registered, departed, active abroad, returned, deceased.",
)
REGISTRY_COMMANDS = Topic(
    "registry.commands.v1",
    "subject_id",
    "registry",
    "Commands to the registry from other services: flag an agency or an employer.",
)
INCIDENT_SUBMISSIONS = Topic(
    "intake.submissions.v1",
    "mission_id",
    "intake",
    "Incident reports submitted system-to-system by trusted mission systems (the Kafka door).",
)
INCIDENTS = Topic(
    "intake.incidents.v1",
    "worker_key",
    "intake",
    "Incidents accepted (or rejected) by intake, with the worker match.",
)
CASES = Topic(
    "casework.cases.v1",
    "case_id",
    "casework",
    "Case events: opened, merged, triaged, claimed, acknowledged, escalated, resolved, closed...",
)
ESCALATIONS = Topic(
    "escalation.actions.v1",
    "subject_id",
    "escalation",
    "What escalation rules decided: escalate, notify, tag, refer, open a case.",
)
REPATRIATION_REQUESTS = Topic(
    "repatriation.requests.v1",
    "case_id",
    "repatriation",
    "Requests to start a repatriation (living, remains, evacuation) from the desk or the rules.",
)
REPATRIATIONS = Topic(
    "repatriation.workflows.v1",
    "repatriation_id",
    "repatriation",
    "Repatriation workflow and step events.",
)

CATALOG: tuple[Topic, ...] = (
    DEPARTURES,
    REGISTRY_COMMANDS,
    INCIDENT_SUBMISSIONS,
    INCIDENTS,
    CASES,
    ESCALATIONS,
    REPATRIATION_REQUESTS,
    REPATRIATIONS,
)


def all_topic_names() -> list[str]:
    """Every catalog topic and its dead-letter topic."""
    return [n for t in CATALOG for n in (t.name, t.dlq)]
