"""Key rotation on the real broker and database: data written under key 1, rotated to key 2
(interrupted once and resumed), key 1 removed: every lookup still finds its worker, every value
still reads, and no ciphertext under key 1 remains."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from typer.testing import CliRunner

from deploy.cli import app as lindungi
from deploy.cli import pii
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import eventually, running
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
KEY_1 = "rotation-test-key-number-one-0000000000000001"
KEY_2 = "rotation-test-key-number-two-0000000000000002"
SEOUL = bearer("kbri-seoul")
UNMASK = {"unmask": "true"}
OPERATOR_ASKING = {**OPERATOR, "X-Purpose": "checking the rotation"}
WORKERS = [
    {"full_name": f"Pekerja Rotasi {i}", "nik": f"31710145019400{i:02d}", "passport_number": f"C90000{i:02d}"}
    for i in range(1, 6)
]


def keyring(settings: Settings, keys: dict[str, str], current: str) -> Settings:
    return settings.model_copy(
        update={
            "pii_keys": {k: SecretStr(v) for k, v in keys.items()},
            "pii_current_key": current,
            "pii_index_key": SecretStr(KEY_1),  # the lookup hash keeps its key (shared/pii.py)
        }
    )


async def tokens(settings: Settings) -> str:
    """Every document of registry and intake, as text."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        out = []
        for service in ("registry", "intake"):
            db = client[settings.database(service)]
            for name in await db.list_collection_names():
                out += [json.dumps(d, default=str) for d in await db[name].find({}).to_list()]
        return "\n".join(out)
    finally:
        await client.close()


async def test_rotation_to_key_2_keeps_every_lookup_and_leaves_nothing_under_key_1(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(NOW)
    one = settings.model_copy(update={"pii_key": SecretStr(KEY_1)})  # the single-key setup: id "1"
    ids: dict[str, str] = {}
    async with running(registry_app(one, clock)) as registry, running(intake_app(one, clock)) as intake:
        for i, w in enumerate(WORKERS):
            body = departure(
                **w,
                phone=f"+62 812 0000 00{i:02d}",
                next_of_kin={"name": "Ibu", "relation": "mother", "phone": f"+62 813 0000 00{i:02d}"},
            )
            r = await registry.post("/v1/departures", json=body, headers=OPERATOR)
            assert r.status_code == 201, r.text
            ids[w["nik"]] = r.json()["worker_id"]
            r = await intake.post(
                "/v1/incidents",
                json={
                    "country": "KR",
                    "category": "unpaid_wages",
                    "severity": "high",
                    "occurred_at": "2026-11-19T10:00:00+00:00",
                    "worker": {**w, "phone": "+82 10 1234 5678"},
                },
                headers=SEOUL,
            )
            assert r.status_code == 202, r.text
    before = await tokens(settings)
    assert before.count('"v2:1:') == 5 * 4 + 5 * 3  # registry: nik, passport, phone, kin; intake: 3

    # The new keyring is deployed (key 2 current); the rotation is interrupted, then resumed.
    two = keyring(settings, {"1": KEY_1, "2": KEY_2}, "2")
    seen: list[str] = []

    def crash_after_three(name: str, done: int, total: int) -> None:
        seen.append(name)
        if name == "registry.workers" and done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await pii.rotate(two, batch=2, progress=crash_after_three)
    assert 0 < (await tokens(settings)).count('"v2:2:') < 35
    tallies = await pii.rotate(two, batch=2)
    assert tallies["registry.workers"].resumed_after is not None  # went on from the checkpoint
    assert tallies["registry.workers"].scanned == 3  # documents 3..5
    assert tallies["intake.incidents"].rotated == 15
    after = await tokens(settings)
    assert '"v2:1:' not in after and '"v1:' not in after
    assert after.count('"v2:2:') == 35
    assert await pii.census(two) == {"registry.workers": {"2": 20}, "intake.incidents": {"2": 15}}
    again = await pii.rotate(two)  # a finished rotation starts over, and changes nothing
    assert again["registry.workers"].rotated == 0 and again["registry.workers"].current == 20

    # Key 1 removed from the keyring: every worker is found, every value reads.
    only_two = keyring(settings, {"2": KEY_2}, "2")
    async with (
        running(registry_app(only_two, clock)) as registry,
        running(intake_app(only_two, clock)) as intake,
    ):
        for i, w in enumerate(WORKERS):
            for field, value in (("nik", w["nik"]), ("passport_number", w["passport_number"])):
                r = await registry.post(
                    "/v1/workers/search", json={field: value}, params=UNMASK, headers=OPERATOR_ASKING
                )
                assert [x["worker_id"] for x in r.json()] == [ids[w["nik"]]], (field, r.text)
            got = r.json()[0]
            assert got["nik"] == w["nik"] and got["passport_number"] == w["passport_number"]
            assert got["phone"] == f"+62 812 0000 00{i:02d}"
            assert got["next_of_kin"]["phone"] == f"+62 813 0000 00{i:02d}"

        tries = iter(range(1000))

        async def projected() -> bool:
            r = await intake.post(
                "/v1/incidents",
                json={
                    "country": "KR",
                    "category": "illness",
                    "severity": "low",
                    "occurred_at": "2026-11-19T11:00:00+00:00",
                    "worker": {"nik": WORKERS[0]["nik"]},
                },
                headers={**SEOUL, "Idempotency-Key": f"after-rotation-{next(tries)}"},
            )
            return r.json()["match"]["worker_id"] == ids[WORKERS[0]["nik"]]

        # registry's departures reach intake's projection through Kafka; a report by NIK matches
        assert await eventually(projected, timeout=60, interval=0.5)

    # The operators' command, with the same settings from the environment.
    for var, value in {
        "LINDUNGI_NAMESPACE": settings.namespace,
        "MONGODB_URI": settings.mongodb_uri,
        "LINDUNGI_PII_KEYS": json.dumps({"2": KEY_2}),
        "LINDUNGI_PII_CURRENT_KEY": "2",
        "LINDUNGI_PII_INDEX_KEY": KEY_1,
    }.items():
        monkeypatch.setenv(var, value)
    runner = CliRunner()
    rotated = await asyncio.to_thread(runner.invoke, lindungi, ["pii", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypting to key '2'" in rotated.output and "registry.workers" in rotated.output
    status = await asyncio.to_thread(runner.invoke, lindungi, ["pii", "status"])
    assert status.exit_code == 0, status.output
    assert "2 (current)" in status.output and "(before key ids)" not in status.output
