"""The national seed at a tiny scale: what it writes, the services' own APIs read back; a rerun skips it."""

from __future__ import annotations

import pytest

from bench.seed import seed
from services.casework.app import create_app as casework_app
from services.escalation.app import create_app as escalation_app
from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import AUDITOR
from tests.support.escalation import SUPERVISOR
from tests.support.harness import running
from tests.support.registry_data import OFFICER

pytestmark = pytest.mark.integration


async def test_seeded_store_reads_back_through_the_services(settings: Settings) -> None:
    first = await seed(settings, 0.001, progress=False)
    assert first["written"]["registry.departures"] == 300
    assert first["written"]["casework.cases"] >= 60  # 70 incidents; a few join an open case
    assert first["written"]["escalation.chains"] == first["chains"] >= 1
    sample = first["sample"]

    async with running(registry_app(settings)) as registry:
        r = await registry.post("/v1/workers/search", json={"nik": sample["nik"]}, headers=OFFICER)
        assert r.status_code == 200, r.text
        assert [w["worker_id"] for w in r.json()] == [sample["worker_id"]]
        assert sample["nik"] not in r.text  # masked, as the service answers

    async with running(casework_app(settings)) as casework:
        r = await casework.get(f"/v1/cases/{sample['case_id']}", headers=AUDITOR)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == sample["case_status"]
        r = await casework.get("/v1/cases", params={"status": "closed"}, headers=AUDITOR)
        assert r.status_code == 200 and r.json(), r.text

    async with running(escalation_app(settings, ManualClock(), timer_loop=False)) as escalation:
        r = await escalation.get(
            "/v1/chains", params={"case_id": sample["chain_case_id"]}, headers=SUPERVISOR
        )
        assert r.status_code == 200, r.text
        assert [c["state"] for c in r.json()] == ["pending"]

    again = await seed(settings, 0.001, progress=False)  # rerunnable: everything exists, nothing doubles
    assert sum(again["written"].values()) == 0
    assert again["skipped"]["registry.departures"] == 300
