"""One envelope for every event: CloudEvents 1.0 attributes around a pydantic payload."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.clock import Clock
from shared.topics import Topic

EVENT_TYPES: dict[str, type[Event]] = {}

E = TypeVar("E", bound="type[Event]")


class Event(BaseModel):
    """Base of every event payload; `type` names it and carries its version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]
    topic: ClassVar[Topic]
    sent_by: ClassVar[tuple[str, ...]]  # the services that publish it (the outbox refuses others)


# Who sends IncidentSubmitted: the missions' own systems, outside Lindungi.
MISSION_SYSTEMS = "missions' systems (outside Lindungi)"


def event_type(name: str, topic: Topic, *, sent_by: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    """Register a payload model under its versioned CloudEvents type name, on its topic.

    sent_by names the services that publish it (default: the topic's owner); a service's outbox
    refuses an event it is not named for, so the event map (docs/events.md) cannot drift.
    """

    def register(cls: E) -> E:
        if name in EVENT_TYPES and EVENT_TYPES[name] is not cls:
            raise ValueError(f"event type {name} registered twice")
        cls.type = name
        cls.topic = topic
        cls.sent_by = sent_by or (topic.owner,)
        EVENT_TYPES[name] = cls
        return cls

    return register


class UnknownEventType(ValueError):
    """The envelope names a type this code does not know."""


class Envelope(BaseModel):
    """A CloudEvents 1.0 structured-mode event."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls, event: Event, *, source: str, subject: str, clock: Clock, id: str | None = None
    ) -> Envelope:
        """Put a payload into a new envelope with a fresh (or given) id."""
        return cls(
            id=id or uuid.uuid4().hex,
            source=source,
            type=event.type,
            subject=subject,
            time=clock.now(),
            data=event.model_dump(mode="json"),
        )

    def payload(self) -> Event:
        """The typed payload; raises UnknownEventType or pydantic.ValidationError."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise UnknownEventType(f"unknown event type {self.type!r}")
        return model.model_validate(self.data)


def event_types_of(topic: Topic) -> list[str]:
    """The registered event types published on a topic."""
    return sorted(name for name, cls in EVENT_TYPES.items() if cls.topic == topic)
