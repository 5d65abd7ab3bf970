"""The event catalog as an AsyncAPI 3.0 document, generated from the code (never by hand).

Senders come from each event type's `sent_by` (which the outbox enforces), receivers from what
each service's runtime really subscribes (`services/eventmap.py` gathers them):
`python -m services.eventmap` writes docs/asyncapi.json and docs/events.md; a unit test keeps
both current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import shared.events  # noqa: F401  (registers every event type)
from shared.envelope import EVENT_TYPES, Envelope, event_types_of
from shared.topics import CATALOG


@dataclass(frozen=True)
class Receiver:
    """A service's consumer group on a topic, and the event types it handles there."""

    service: str
    topic: str
    group: str
    handles: tuple[str, ...]


def _op_id(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def document(receivers: list[Receiver]) -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic, one message per event type, CloudEvents envelope;
    one send operation per (sender, topic) and one receive operation per consumer group."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEventsEnvelope": Envelope.model_json_schema()}
    for topic in CATALOG:
        refs = {}
        senders: dict[str, list[str]] = {}
        for name in event_types_of(topic):
            model = EVENT_TYPES[name]
            schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for sub, sub_schema in schemas[model.__name__].pop("$defs", {}).items():
                schemas[sub] = sub_schema
            messages[name] = {
                "name": name,
                "title": model.__name__,
                "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
                "contentType": "application/cloudevents+json",
                "headers": {
                    "type": "object",
                    "properties": {"ce_type": {"const": name}, "ce_id": {"type": "string"}},
                },
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/CloudEventsEnvelope"},
                        {
                            "properties": {
                                "type": {"const": name},
                                "data": {"$ref": f"#/components/schemas/{model.__name__}"},
                            }
                        },
                    ]
                },
            }
            refs[name.replace(".", "_")] = {"$ref": f"#/components/messages/{name}"}
            for sender in model.sent_by:
                senders.setdefault(sender, []).append(name)
        channel_ref = {"$ref": f"#/channels/{topic.name}"}
        sent = ", ".join(sorted(senders)) or "nobody"
        received = ", ".join(sorted({r.service for r in receivers if r.topic == topic.name})) or "nobody"
        channels[topic.name] = {
            "address": topic.name,
            "description": f"{topic.description} Key: {topic.key}. Owner: {topic.owner}. "
            f"Sent by: {sent}. Received by: {received}. Dead letters: {topic.dlq}.",
            "messages": refs,
        }

        def on(types: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
            return [
                {"$ref": f"#/channels/{topic.name}/messages/{t.replace('.', '_')}"}  # noqa: B023
                for t in sorted(types)
            ]

        for sender, types in sorted(senders.items()):
            operations[_op_id(f"{sender}.send.{topic.name}")] = {
                "action": "send",
                "title": f"{sender} sends on {topic.name}",
                "channel": channel_ref,
                "messages": on(types),
            }
        for r in sorted(receivers, key=lambda r: (r.service, r.group)):
            if r.topic == topic.name:
                operations[_op_id(f"{r.service}.receive.{topic.name}")] = {
                    "action": "receive",
                    "title": f"{r.service} receives {topic.name} (consumer group {r.group})",
                    "channel": channel_ref,
                    "messages": on(r.handles),
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Lindungi events",
            "version": "1",
            "description": "Every event of every Lindungi service, in a CloudEvents 1.0 envelope: "
            "who sends it, who receives it.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render(receivers: list[Receiver]) -> str:
    return json.dumps(document(receivers), indent=2, sort_keys=True) + "\n"
