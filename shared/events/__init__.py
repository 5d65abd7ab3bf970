"""Event payloads, one module per owning service. Importing this package registers them all."""

from shared.events import casework, escalation, intake, registry, repatriation

__all__ = ["casework", "escalation", "intake", "registry", "repatriation"]
