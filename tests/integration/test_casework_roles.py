"""Every casework endpoint against every role: who may call it, checked on the real app."""

from __future__ import annotations

from typing import Any

import pytest

from services.casework.app import create_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import auth
from tests.support.harness import running

pytestmark = pytest.mark.integration

ROLES = {
    "officer": auth("officer-ani"),
    "supervisor": auth("supervisor-dewi"),
    "administrator": auth("admin-eko"),
    "auditor": auth("auditor-fajar"),
    "mission": auth("kbri-seoul"),
    "debarkation": auth("debarkation-cgk"),  # a user of another service
}
READ = {"officer", "supervisor", "administrator", "auditor"}
WORK = {"officer", "supervisor"}
SUP = {"supervisor"}
NOCASE = "0" * 32

# (method, path, body, roles allowed). Allowed callers reach the handler, which answers
# 200 or 404 (there is no such case): anything but 401/403.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", f"/v1/cases/{NOCASE}", None, READ | {"mission"}),
    ("GET", "/v1/cases", None, READ | {"mission"}),
    ("POST", f"/v1/cases/{NOCASE}/triage", {}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/claim", {}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/acknowledge", {}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/release", {}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/reassign", {"assignee": "officer-budi", "reason": "r"}, SUP),
    ("POST", f"/v1/cases/{NOCASE}/awaiting-repatriation", {}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/resolve", {"resolution": "r"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/close", {"reason": "r"}, SUP),
    ("POST", f"/v1/cases/{NOCASE}/reopen", {"reason": "r"}, SUP),
    ("POST", f"/v1/cases/{NOCASE}/notes", {"text": "t"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/tags", {"tag": "t"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/priority", {"priority": 5, "reason": "r"}, SUP),
    ("POST", f"/v1/cases/{NOCASE}/escalate", {"reason": "r"}, SUP),
    ("POST", f"/v1/cases/{NOCASE}/mission-requests", {"text": "t"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/mission-requests/r1/answer", {"text": "t"}, {"mission"}),
    ("GET", "/v1/mission-requests?mission_id=kbri-seoul", None, READ | {"mission"}),
    ("POST", f"/v1/cases/{NOCASE}/suggestions/i1/confirm", {"reason": "r"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/suggestions/i1/reject", {"reason": "r"}, WORK),
    ("POST", f"/v1/cases/{NOCASE}/unmerge", {"reason": "r"}, {"supervisor"}),
    ("GET", "/v1/queues", None, READ),
    ("GET", "/v1/queues/east_asia-general/cases", None, READ),
    ("POST", "/v1/queues/east_asia-general/claim-next", None, WORK),
    ("GET", "/v1/supervision", None, {"supervisor", "administrator", "auditor"}),
    ("POST", "/v1/queues/release-expired", None, {"supervisor", "administrator"}),
]


def test_the_table_covers_every_endpoint() -> None:
    app = create_app(Settings(), ManualClock())
    spec = app.openapi()["paths"]
    paths = {(m.upper(), p) for p, ops in spec.items() for m in ops if p.startswith("/v1/")}
    table = {
        (
            m,
            p.replace(NOCASE, "{case_id}")
            .replace("/r1/", "/{request_id}/")
            .replace("/i1/", "/{incident_id}/"),
        )
        for m, p, _, _ in ENDPOINTS
    }
    table = {(m, p.replace("east_asia-general", "{queue}").split("?")[0]) for m, p in table}
    assert paths == table


async def test_roles_are_enforced_on_every_endpoint(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        for method, path, body, allowed in ENDPOINTS:
            r = await cw.request(method, path, json=body)
            assert r.status_code == 401, (method, path)
            r = await cw.request(method, path, json=body, headers={"authorization": "Bearer dev-nobody"})
            assert r.status_code == 401, (method, path)
            for role, headers in ROLES.items():
                r = await cw.request(method, path, json=body, headers=headers)
                if role in allowed:
                    assert r.status_code in (200, 404), (method, path, role, r.text)
                else:
                    assert r.status_code == 403, (method, path, role, r.text)
                    assert r.json()["errors"][0]["field"] == "authorization"
