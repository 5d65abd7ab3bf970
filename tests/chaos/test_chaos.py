"""Faults under load: the five services, two replicas each, survive kill -9, a broker restart and
a database outage with nothing lost and nothing done twice.

`make test` runs the short profile (a few minutes); `make chaos` runs the full one and writes
docs/reliability.md. The run starts its own Kafka and database (it stops and restarts them), so
it never touches a broker or database given by the environment; if they cannot start, it fails.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.chaos import checks, scenario
from tests.chaos.system import ROOT, InfraError

pytestmark = pytest.mark.chaos


def test_nothing_lost_or_doubled_under_faults() -> None:
    name = os.environ.get("LINDUNGI_CHAOS", "short")
    profile = scenario.PROFILES[name]
    seed = int(os.environ["LINDUNGI_CHAOS_SEED"]) if os.environ.get("LINDUNGI_CHAOS_SEED") else None
    write = ROOT / "docs" / "reliability.md" if name == "full" else None
    try:
        # In a thread of its own: the scenario runs its own event loop, and a test before this
        # one (Playwright's sync API) may have left a loop marked running in this thread.
        with ThreadPoolExecutor(1) as pool:
            outcome = pool.submit(scenario.execute, profile, seed=seed, write=write).result()
    except InfraError as exc:
        pytest.fail(str(exc), pytrace=False)
    kills = outcome.figures["kills"]
    assert kills >= profile.kills, f"only {kills} kills were injected"
    assert outcome.figures["database outages"], "the database outage was not injected"
    assert outcome.figures["kafka restarts"] >= profile.kafka_restarts
    assert outcome.ok, "\n" + checks.table(outcome.rows)
