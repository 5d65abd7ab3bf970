"""escalation's Kafka side: every consumed event goes through the rules engine; its own
published actions go to the notifier.

The project's shape, one `<source>_handlers(rt, ...)` per consumed topic, each a dict of event
type to handler (app.py passes each to `rt.consume`). Every event type of CASES, INCIDENTS,
DEPARTURES and REPATRIATIONS goes to the same engine entry (`Escalation.handle`): the rule file
names which of them matter, so the dicts list every type the rules can name. `rt` is not
needed by these handlers; it is taken so every service's factories read alike.
"""

from __future__ import annotations

from services.escalation import ruleset
from services.escalation.engine import Escalation
from services.escalation.notifier import Notifier
from shared.envelope import Event
from shared.events.escalation import EscalationAction
from shared.kafka import Handler
from shared.service import Runtime
from shared.topics import CASES, DEPARTURES, INCIDENTS, REPATRIATIONS, Topic


def _to_engine(topic: Topic, engine: Escalation) -> dict[type[Event], Handler]:
    """Every event type of a topic that a rule file can name, to the engine."""
    return {cls: engine.handle for cls in ruleset.EVENTS.values() if cls.topic == topic}


def case_handlers(rt: Runtime, engine: Escalation) -> dict[type[Event], Handler]:
    """Handlers of CASES: they trigger rules and end chains (an acknowledged case)."""
    return _to_engine(CASES, engine)


def incident_handlers(rt: Runtime, engine: Escalation) -> dict[type[Event], Handler]:
    """Handlers of INCIDENTS: they trigger rules and feed counting rules."""
    return _to_engine(INCIDENTS, engine)


def departure_handlers(rt: Runtime, engine: Escalation) -> dict[type[Event], Handler]:
    """Handlers of DEPARTURES."""
    return _to_engine(DEPARTURES, engine)


def repatriation_handlers(rt: Runtime, engine: Escalation) -> dict[type[Event], Handler]:
    """Handlers of REPATRIATIONS: repatriation steps start and end deadline chains."""
    return _to_engine(REPATRIATIONS, engine)


def action_handlers(rt: Runtime, notifier: Notifier) -> dict[type[Event], Handler]:
    """Handlers of ESCALATIONS (its own actions, once published): notify and refer become
    deliveries, at least once."""
    return {EscalationAction: notifier.on_action}
