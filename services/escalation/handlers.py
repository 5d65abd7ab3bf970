"""escalation's Kafka side: every consumed event goes through the rules engine."""

from __future__ import annotations

from services.escalation import ruleset
from services.escalation.engine import Escalation
from shared.kafka import Handler
from shared.service import Runtime


def subscribe(rt: Runtime, engine: Escalation) -> None:
    """Consume cases, incidents, departures and repatriations; each event type goes to the engine."""
    for topic in ruleset.CONSUMED:
        handlers: dict[type, Handler] = {
            cls: engine.handle for cls in ruleset.EVENTS.values() if cls.topic == topic
        }
        rt.consume(topic, handlers)
