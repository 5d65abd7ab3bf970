"""escalation's HTTP models: rule sets in and out, dry runs, chains."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

RULE_EXAMPLE = """rules:
  - id: critical-ack-1h
    description: A critical case must be acknowledged within 1 hour
    trigger: {event: CaseOpened, when: {severity: critical}}
    deadline:
      subject: case
      until: [{event: CaseAcknowledged}]
      stages:
        - after: 1h
          actions: [{do: escalate, level: 1}]
"""


class RuleSetIn(BaseModel):
    """A whole rule file: validated whole, stored as the next version, or refused whole."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(min_length=1, max_length=500_000, examples=[RULE_EXAMPLE], description="the rule file")
    note: str | None = Field(None, max_length=500, examples=["critical deadline down to 45 minutes"])


class RuleSetOut(BaseModel):
    """A stored rule set."""

    version: int = Field(examples=[3], description="grows with every load; the highest is in force")
    loaded_at: AwareDatetime = Field(examples=["2026-11-20T09:30:00Z"])
    loaded_by: str = Field(
        examples=["supervisor-dewi"], description="who loaded it ('default' at first start)"
    )
    note: str | None = Field(None, examples=["critical deadline down to 45 minutes"])
    rules: list[dict[str, Any]] | None = Field(None, description="the rules, validated (listing omits them)")


class DryRunIn(BaseModel):
    """A candidate rule file and where in the stored event stream to replay it from."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(min_length=1, max_length=500_000, examples=[RULE_EXAMPLE])
    from_offset: int | None = Field(
        None, ge=0, strict=True, examples=[0], description="offset in every partition"
    )
    from_time: AwareDatetime | None = Field(None, examples=["2026-11-01T00:00:00Z"])
    until: AwareDatetime | None = Field(None, description="simulate time up to here (default: last event)")

    @model_validator(mode="after")
    def _one_start(self) -> DryRunIn:
        if (self.from_offset is None) == (self.from_time is None):
            raise ValueError("give exactly one of from_offset and from_time")
        return self


class DryRunOut(BaseModel):
    """What the candidate would have fired against what the rules in force would fire, on the same events."""

    live_version: int = Field(examples=[3])
    events: int = Field(examples=[1250], description="events replayed")
    first_event_at: str | None = None
    last_event_at: str | None = None
    candidate_fired: int = Field(examples=[40])
    live_fired: int = Field(examples=[37])
    same: int = Field(examples=[35], description="firings both would make, identically")
    only_candidate: list[dict[str, Any]] = Field(description="firings only the candidate would make")
    only_live: list[dict[str, Any]] = Field(description="firings only the rules in force would make")
    changed: list[dict[str, Any]] = Field(
        description="same rule, stage and subject, different actions or time"
    )
    by_rule: dict[str, dict[str, int]] = Field(description="firings per rule id: candidate and live")


class ChainOut(BaseModel):
    """A deadline chain with its frozen stages: later rule edits never change it."""

    chain_id: str
    rule_id: str = Field(examples=["critical-ack-1h"])
    rule_version: int = Field(examples=[1])
    subject: str = Field(examples=["case:6f1c1d5253f44e8b"])
    state: str = Field(examples=["pending"], description="pending, done, cancelled or superseded")
    slot: int = Field(description="index of the next slot to fire (stage and repeat flattened)")
    slots: int | None = None
    due_at: AwareDatetime | None = Field(None, description="when the next slot fires (pending chains)")
    started_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    closed_by: str | None = Field(None, description="the event id that ended it, or 'timer'")
    stages: list[dict[str, Any]]
    until: list[dict[str, Any]]
    firings: list[dict[str, Any]] = []


class NotificationOut(BaseModel):
    """One notification of a notify or refer action to one contact, and what became of it."""

    notification_id: str
    case_id: str
    rule_id: str = Field(examples=["critical-ack-1h"])
    kind: str = Field(examples=["notify"], description="notify or refer")
    to: str = Field(examples=["supervisor"], description="the role or partner the action named")
    contact: str | None = Field(None, examples=["desk-supervisors"], description="from the channel file")
    channel: str | None = Field(None, examples=["email"], description="email or webhook")
    state: str = Field(examples=["sent"], description="pending, sent or failed")
    attempts: int = Field(description="tries so far")
    created_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    last_error: str | None = None
    country: str | None = Field(
        None, examples=["KR"], description="the case's country, when the trigger said"
    )
    region: str | None = Field(None, examples=["east_asia"], description="its desk region")
