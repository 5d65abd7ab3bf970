"""Home province (issue 14), on the real broker and database: the desk sets or corrects a worker's
home province on a repatriation, with a reason; the region-owned steps follow it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.casework.app import create_app as create_casework
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.repatriation import store
from services.repatriation.app import create_app
from shared.clock import ManualClock
from shared.settings import Settings
from shared.topics import REPATRIATIONS
from tests.integration.test_console_backends import _Route as Route
from tests.support.casework import incident, publish_incident
from tests.support.harness import envelopes, eventually, read_topic, running
from tests.support.repatriation import auth
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

DESK, KL, DKI = auth("officer-ani"), auth("kbri-kuala-lumpur"), auth("region-dki")


async def test_the_desk_sets_and_corrects_a_workers_home_province(settings: Settings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    await store.record_case(
        client[settings.database("repatriation")], case_id="case-hp", country="MY", opened_at=None
    )
    await client.close()
    async with running(create_app(settings, ManualClock())) as c:
        body = {
            "kind": "living",
            "case_id": "case-hp",
            "worker_name": "Siti Rahayu",
            "country": "MY",
            "facts": {"passport_missing": False, "sick": False},
            "reason": "wants to go home",
        }
        r = await c.post("/v1/repatriations", json=body, headers=DESK)
        assert r.status_code == 201, r.text
        rid = r.json()["repatriation_id"]
        assert r.json().get("home_province") is None
        # unknown province: no region sees it
        assert (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).status_code == 404

        path = f"/v1/repatriations/{rid}/home-province"
        bad = await c.post(path, json={"home_province": "Atlantis", "reason": "typo"}, headers=DESK)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("home_province")
        no_reason = await c.post(path, json={"home_province": "DKI Jakarta"}, headers=DESK)
        assert no_reason.status_code == 422
        mission = await c.post(path, json={"home_province": "DKI Jakarta", "reason": "KTP"}, headers=KL)
        assert mission.status_code == 403

        r = await c.post(path, json={"home_province": "dki  jakarta", "reason": "KTP seen"}, headers=DESK)
        assert r.status_code == 200, r.text
        assert r.json()["home_province"] == "DKI Jakarta"
        assert (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).status_code == 200  # now the region's

        r = await c.post(
            path, json={"home_province": "Jawa Barat", "reason": "family lives in Bandung"}, headers=DESK
        )
        doc = r.json()
        assert doc["home_province"] == "Jawa Barat"
        assert (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).status_code == 404
        set_ = [t for t in doc["timeline"] if t["status"] == "home_province_set"]
        assert [t["reason"] for t in set_] == [
            "unknown -> DKI Jakarta: KTP seen",
            "DKI Jakarta -> Jawa Barat: family lives in Bandung",
        ]
        assert set_[-1]["actor"] == "officer-ani"
        # the same province again changes nothing
        same = await c.post(path, json={"home_province": "Jawa Barat", "reason": "again"}, headers=DESK)
        assert len([t for t in same.json()["timeline"] if t["status"] == "home_province_set"]) == 2

        async def told() -> list[dict[str, Any]]:
            recs = await read_topic(settings, REPATRIATIONS.name, min_count=1, timeout=5)
            return [
                e["data"]
                for e in envelopes(recs)
                if e["data"]["repatriation_id"] == rid and e["data"]["status"] == "home_province_set"
            ]

        events = await eventually(lambda: _at_least(told, 2))
        assert [e["home_province"] for e in events] == ["DKI Jakarta", "Jawa Barat"]
        assert events[-1]["case_id"] == "case-hp"


async def _at_least(read: Any, n: int) -> Any:
    got = await read()
    return got if len(got) >= n else None


async def test_the_case_page_sets_the_home_province_of_its_repatriation(settings: Settings) -> None:
    clock = ManualClock()
    casework, repatriation = create_casework(settings, clock), create_app(settings, clock)
    async with (
        casework.router.lifespan_context(casework),
        repatriation.router.lifespan_context(repatriation),
    ):
        inc = incident()
        await publish_incident(settings, inc)
        cw = httpx.AsyncClient(transport=httpx.ASGITransport(app=casework), base_url="http://casework")
        rp = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=repatriation), base_url="http://repatriation"
        )

        async def case_id() -> str | None:
            found = (await cw.get("/v1/cases", params={"incident_id": inc.incident_id}, headers=DESK)).json()
            return found[0]["case_id"] if found else None

        cid = await eventually(case_id)

        async def known() -> bool:  # repatriation learns the case from casework's CaseOpened
            r = await rp.post("/v1/repatriations", json=living(cid), headers=DESK)
            return r.status_code == 201

        await eventually(known)
        dead = f"http://127.0.0.1:{free_port()}"  # registry and escalation: not needed here
        console = console_app(
            ConsoleSettings(
                casework_url="http://casework",
                repatriation_url="http://repatriation",
                registry_url=dead,
                escalation_url=dead,
                service_timeout_seconds=2,
            ),
            clock,
            transport=Route(
                {
                    "casework": httpx.ASGITransport(app=casework),
                    "repatriation": httpx.ASGITransport(app=repatriation),
                }
            ),
        )
        async with console.router.lifespan_context(console):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
            r = await client.post(
                "/sign-in", data={"user_id": "officer-ani", "credential": "dev-officer-ani"}
            )
            assert r.status_code == 303
            client.cookies.set("lindungi_lang", "en")
            page = await client.get(f"/cases/{cid}")
            assert page.status_code == 200
            assert "not known yet" in page.text and 'data-workflow-action="home-province"' in page.text
            rid = (await rp.get("/v1/repatriations", params={"case_id": cid}, headers=DESK)).json()[0][
                "repatriation_id"
            ]
            r = await client.post(
                f"/repatriations/{rid}/home-province",
                data={"home_province": "Jawa Barat", "reason": "KTP seen", "next": f"/cases/{cid}"},
            )
            assert r.status_code == 303 and r.headers["location"] == f"/cases/{cid}?done=home-province"
            page = await client.get(r.headers["location"])
            assert "Jawa Barat" in page.text and "not known yet" not in page.text
            bad = await client.post(
                f"/repatriations/{rid}/home-province",
                data={"home_province": "Atlantis", "reason": "typo", "next": f"/cases/{cid}"},
            )
            assert bad.status_code == 422 and "38 provinces" in bad.text
            await client.aclose()
        await cw.aclose()
        await rp.aclose()


def living(case_id: str) -> dict[str, Any]:
    return {
        "kind": "living",
        "case_id": case_id,
        "worker_name": "Siti Rahayu",
        "country": "KR",
        "facts": {"passport_missing": False, "sick": False},
        "reason": "wants to go home",
    }
