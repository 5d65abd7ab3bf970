"""Every service's runtime as its app wires it: what it consumes (topic, group), where its outbox is.

The operators' CLI and the event map read the services' wiring from here instead of a second list:
each app is built (nothing is started, nothing connects) and its Runtime is what it declares.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from fastapi import FastAPI

from services.casework.app import create_app as casework_app
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation.app import create_app as repatriation_app
from shared.service import Runtime
from shared.settings import Settings

APPS: dict[str, Callable[..., FastAPI]] = {
    "registry": registry_app,
    "intake": intake_app,
    "casework": casework_app,
    "escalation": escalation_app,
    "repatriation": repatriation_app,
}


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """Building an app configures JSON logs for its service; a command keeps its own."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def runtimes(settings: Settings | None = None) -> dict[str, Runtime]:
    """Each service's Runtime, wired as its app wires it (not started)."""
    out: dict[str, Runtime] = {}
    with _quiet_logging():
        for name, factory in APPS.items():
            out[name] = factory(settings or Settings()).state.runtime
    return out
