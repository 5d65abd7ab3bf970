"""The event catalog as an AsyncAPI 3.0 document, generated from the code (never by hand).

`python -m shared.asyncapi > docs/asyncapi.json`; a unit test keeps the committed copy current.
"""

from __future__ import annotations

import json
from typing import Any

import shared.events  # noqa: F401  (registers every event type)
from shared.envelope import EVENT_TYPES, Envelope, event_types_of
from shared.topics import CATALOG


def document() -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic, one message per event type, CloudEvents envelope."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEventsEnvelope": Envelope.model_json_schema()}
    for topic in CATALOG:
        refs = {}
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
        channels[topic.name] = {
            "address": topic.name,
            "description": f"{topic.description} Key: {topic.key}. Owner: {topic.owner}. "
            f"Dead letters: {topic.dlq}.",
            "messages": refs,
        }
        operations[f"{topic.owner}.publish.{topic.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Lindungi events",
            "version": "1",
            "description": "Every event of every Lindungi service, in a CloudEvents 1.0 envelope.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
