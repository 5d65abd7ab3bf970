"""The event map, true: who sends and who receives every event, read from the code.

Senders are each event type's `sent_by` (a service's outbox refuses an event it is not named
for); receivers are the consumer groups each service's app really subscribes, with the event
types it handles (services.wiring builds the apps, starts nothing).

    python -m services.eventmap        # writes docs/events.md and docs/asyncapi.json

A unit test fails when either committed file drifts from the code.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import shared.events  # noqa: F401  (registers every event type)
from services.wiring import runtimes
from shared import asyncapi
from shared.asyncapi import Receiver
from shared.envelope import EVENT_TYPES, event_types_of
from shared.settings import Settings
from shared.topics import CATALOG

DOCS = Path(__file__).resolve().parents[1] / "docs"

INBOX_NOTE = """\
## Requests to missions: an inbox, not a topic

When the desk asks a mission for something (`POST /v1/cases/{id}/mission-requests`), the request
is stored on the case and nothing is published: no Lindungi service acts on it, and a mission
is not a Kafka consumer. The mission's inbox is casework's API: `GET /v1/mission-requests` as the
mission lists the cases awaiting its answer, each with the desk's `requests` to it (open or
answered; the desk may name any mission serving the case's country); the mission answers with
`POST /v1/cases/{id}/mission-requests/{request_id}/answer`. Both are on the case's timeline.
The console's mission portal shows that inbox. (The topic `casework.mission-requests.v1` and its
two event types, which nobody consumed, are gone.)
"""


def receivers(settings: Settings | None = None) -> list[Receiver]:
    """Every consumer group of every service, with the event types it handles."""
    rts = runtimes(settings or Settings(namespace=""))
    out = [
        Receiver(service=name, topic=topic, group=group, handles=types)
        for name, rt in rts.items()
        for (topic, group), types in rt.handles.items()
    ]

    async def close() -> None:
        for rt in rts.values():
            await rt.mongo.close()

    asyncio.run(close())
    return sorted(out, key=lambda r: (r.topic, r.service))


def markdown(found: list[Receiver]) -> str:
    """docs/events.md: one row per event type, with its topic, senders and receivers."""
    lines = [
        "# Events: who sends, who receives",
        "",
        "Generated from the code by `python -m services.eventmap` (senders: each event type's",
        "`sent_by`, which the outbox enforces; receivers: the consumer groups each service's app",
        "subscribes, and the types it handles). Do not edit by hand: a unit test compares.",
        "Schemas: [asyncapi.json](asyncapi.json).",
        "",
        "| topic | key | event type | producers | consumers (consumer group) |",
        "|---|---|---|---|---|",
    ]
    for topic in CATALOG:
        for name in event_types_of(topic):
            takers = [
                f"{r.service} (`{r.group}`)" for r in found if r.topic == topic.name and name in r.handles
            ]
            senders = ", ".join(EVENT_TYPES[name].sent_by)
            consumers = ", ".join(takers) or "**nobody**"
            lines.append(f"| `{topic.name}` | {topic.key} | `{name}` | {senders} | {consumers} |")
    lines += [
        "",
        "A consumer group reads every event on its topic and passes over the types it does not",
        "handle; undecodable, invalid or failing messages go to `<topic>.dlq` (`lindungi dlq`).",
        "",
        INBOX_NOTE,
    ]
    return "\n".join(lines)


def main() -> int:
    found = receivers()
    (DOCS / "events.md").write_text(markdown(found))
    (DOCS / "asyncapi.json").write_text(asyncapi.render(found))
    print("wrote docs/events.md and docs/asyncapi.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
