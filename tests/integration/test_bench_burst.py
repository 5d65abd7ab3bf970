"""bench.burst at a small size: every report of the burst becomes a case, escalation handles
every case's CaseOpened, and the figures count what the default rules do with new cases."""

from __future__ import annotations

import pytest

from bench.burst import run
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_small_burst_from_5_missions_becomes_cases_that_escalation_handles(
    settings: Settings,
) -> None:
    r = await run(settings, 20, missions=5, in_flight=2)
    assert [m for m, _ in r["missions"]] == [
        "kbri-kuala-lumpur",
        "kdei-taipei",
        "kjri-hong-kong",
        "kbri-riyadh",
        "kbri-seoul",
    ]
    assert (r["n"], r["cases"], r["evaluated"]) == (20, 20, 20)
    # the default rules: every new case is to be triaged within 24 hours (a chain each), and with
    # an empty registry every worker is unmatched: tagged non-procedural and escalated at once
    assert r["chains"]["triage-24h"] == 20
    assert r["chained_cases"] == 20
    assert r["firings"]["non-procedural"] == 20
    assert r["action_cases"] == 20
    assert r["actions"] >= 40  # tag and escalate each, applied by casework
    assert 0 < r["post_p50"] <= r["post_p99"] < r["accepted_s"] + 1
    assert r["case_p50"] <= r["case_p99"] and r["effect_p50"] <= r["effect_p99"]
    assert r["last_case_s"] <= r["last_effect_s"]  # escalation handles a case casework stored
