"""Escalations reach people: notify and refer delivered by email and signed webhook, on the real
broker and database, to an SMTP server and an HTTP server running in the test process."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.casework.app import create_app as create_casework
from services.escalation import channels
from services.escalation.app import create_app as create_escalation
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.escalation import EscalationAction
from shared.settings import Settings
from shared.topics import ESCALATIONS
from shared.vocab import Category, Severity
from tests.support.casework import SUPERVISOR, incident, publish_incident
from tests.support.escalation import OFFICER, T0, case_opened, envelope, published, send
from tests.support.harness import eventually, running
from tests.support.receivers import http_receiver, smtp_server

pytestmark = pytest.mark.integration

SECRET = "test-signing-secret"
CONSOLE = "http://console.test"


def channel_file(tmp_path: Path, *, hook_url: str = "http://127.0.0.1:9/unused") -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"""
contacts:
  desk: {{email: [desk@lindungi.test]}}
  desk-middle-east: {{email: [me@lindungi.test]}}
  satgas-tppo:
    webhook: {{url: "{hook_url}/partners/satgas-tppo", secret: satgas}}
routes:
  - {{to: supervisor, contacts: [desk]}}
  - {{to: supervisor, regions: [middle_east], contacts: [desk-middle-east]}}
  - {{to: satgas-tppo, contacts: [satgas-tppo]}}
"""
    )
    return path


def with_channels(settings: Settings, path: Path, smtp_port: int, **over: object) -> Settings:
    return settings.model_copy(
        update={
            "escalation_channels": str(path),
            "smtp_port": smtp_port,
            "webhook_secrets": {"satgas": SecretStr(SECRET)},
            "console_url": CONSOLE,
            "notify_backoff_seconds": 60.0,
            **over,
        }
    )


async def outcomes(settings: Settings, case_id: str, n: int = 1) -> list[dict] | None:  # type: ignore[type-arg]
    got = await published(settings, ESCALATIONS.name, case_id=case_id)
    done = [e for e in got if e["type"] == "lindungi.escalation.notification.v1"]
    return done if len(done) >= n else None


async def test_a_critical_case_not_acknowledged_emails_the_supervisors_of_its_region_once(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    with smtp_server() as (box, port):
        s = with_channels(settings, channel_file(tmp_path), port)
        app = create_escalation(s, clock, timer_poll_seconds=0.1)
        async with running(app) as http:
            opened = case_opened(severity=Severity.CRITICAL)  # Malaysia: ASEAN, not the Middle East
            await send(s, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
            await eventually(
                lambda: http.get("/v1/chains", params={"case_id": opened.case_id}, headers=OFFICER)
            )
            clock.set(T0 + timedelta(hours=1))

            [sent] = await eventually(lambda: outcomes(s, opened.case_id))
            assert sent["data"]["status"] == "sent" and sent["data"]["attempts"] == 1
            assert sent["data"]["channel"] == "email" and sent["data"]["contact"] == "desk"
            assert len(box.messages) == 1 and box.recipients == [["desk@lindungi.test"]]
            mail = box.messages[0]
            nid = sent["data"]["notification_id"]
            assert mail["Message-ID"] == f"<{nid}@lindungi>"
            subject = str(mail["Subject"])
            assert opened.case_id in subject and "critical" in subject
            assert opened.worker_key not in subject and opened.worker_key not in mail.get_content()
            body = mail.get_content()
            assert f"{CONSOLE}/cases/{opened.case_id}" in body and "critical-ack-1h" in body

            listed = (
                await http.get("/v1/notifications", params={"case_id": opened.case_id}, headers=OFFICER)
            ).json()
            assert [(n["notification_id"], n["state"], n["attempts"]) for n in listed] == [(nid, "sent", 1)]
            assert (listed[0]["country"], listed[0]["region"]) == ("MY", "asean")  # for the inbox

            async def in_the_inbox() -> list[dict] | None:  # type: ignore[type-arg]
                r = await http.get("/v1/notifications/inbox", params={"region": "asean"}, headers=SUPERVISOR)
                return r.json() or None  # once the outcome is folded into the record

            assert [n["notification_id"] for n in await eventually(in_the_inbox)] == [nid]


async def test_a_referral_reaches_the_partner_signed_after_a_retry_and_the_case_timeline_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    async with http_receiver() as (hooks, base):
        hooks.statuses = [503]  # the partner is down for the first try
        s = with_channels(settings, channel_file(tmp_path, hook_url=base), 9)
        escalation = create_escalation(s, clock, timer_poll_seconds=0.1)
        handled: list[str] = []

        async def seen(env: Envelope) -> None:
            handled.append(env.id)

        escalation.state.runtime.after_handle.append(seen)
        casework = create_casework(s, clock)
        async with running(casework) as cw, running(escalation):
            report = incident(
                category=Category.TRAFFICKING, severity=Severity.CRITICAL, worker_name="Siti Aminah"
            )
            await publish_incident(s, report)

            async def case() -> dict | None:  # type: ignore[type-arg]
                r = await cw.get("/v1/cases", params={"incident_id": report.incident_id}, headers=OFFICER)
                return r.json()[0] if r.json() else None

            case_id = (await eventually(case))["case_id"]
            await eventually(lambda: holds(lambda: len(hooks.requests) >= 1))
            assert await outcomes(s, case_id) is None  # one failed try is not an outcome
            clock.advance(timedelta(seconds=59))
            assert await escalation.state.notifier.deliver_due() == 0  # the backoff holds
            assert len(hooks.requests) == 1
            clock.advance(timedelta(seconds=1))
            [sent] = await eventually(lambda: outcomes(s, case_id))
            assert sent["data"]["status"] == "sent" and sent["data"]["attempts"] == 2
            assert len(hooks.requests) == 2

            first, second = hooks.requests
            nid = sent["data"]["notification_id"]
            for h in (first, second):
                assert h.path == "/partners/satgas-tppo"  # the URL is the file's, nothing of the case
                assert h.headers["x-lindungi-notification-id"] == nid
                assert channels.verify(SECRET, h.body, h.headers["x-lindungi-signature"])
                assert not channels.verify("another secret", h.body, h.headers["x-lindungi-signature"])
            msg = json.loads(second.body)
            assert msg["case_url"] == f"{CONSOLE}/cases/{case_id}" and msg["kind"] == "refer"
            assert msg["category"] == "trafficking" and msg["level"] == 3
            assert "Siti" not in second.body.decode() and report.worker_key not in second.body.decode()

            async def timeline() -> list[dict] | None:  # type: ignore[type-arg]
                doc = (await cw.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
                got = [e for e in doc["timeline"] if e["kind"].startswith("notification_")]
                return got or None

            [entry] = await eventually(timeline)
            assert entry["kind"] == "notification_sent" and entry["attempts"] == 2
            assert entry["channel"] == "webhook" and entry["to"] == "satgas-tppo"

            # The action delivered again (as Kafka may): nothing is sent twice.
            [action] = [
                e
                for e in await published(s, ESCALATIONS.name, case_id=case_id, kind="refer")
                if e["type"] == "lindungi.escalation.action.v1"
            ]
            again = Envelope.model_validate(action)
            payload = EscalationAction.model_validate(again.data)
            await send(s, (payload, again, case_id))
            await eventually(lambda: holds(lambda: handled.count(again.id) >= 2))
            clock.advance(timedelta(hours=2))
            await escalation.state.notifier.deliver_due()
            assert len(hooks.requests) == 2


async def test_a_receiver_that_keeps_failing_is_tried_n_times_then_failed_and_no_route_fails_visibly(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    with smtp_server() as (box, port):
        box.answers = ["451 try again later"] * 10
        s = with_channels(settings, channel_file(tmp_path), port, notify_attempts=3)
        app = create_escalation(s, clock, timer_poll_seconds=0.1)
        async with running(app) as http:
            opened = case_opened(severity=Severity.CRITICAL)
            await send(s, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
            await eventually(
                lambda: http.get("/v1/chains", params={"case_id": opened.case_id}, headers=OFFICER)
            )
            clock.set(T0 + timedelta(hours=1))
            await eventually(lambda: holds(lambda: box.refused >= 1))
            clock.advance(timedelta(seconds=60))  # backoff 60 s, then 120 s
            await eventually(lambda: holds(lambda: box.refused >= 2))
            clock.advance(timedelta(seconds=120))
            [failed] = await eventually(lambda: outcomes(s, opened.case_id))
            assert failed["data"]["status"] == "failed" and failed["data"]["attempts"] == 3
            assert "451" in failed["data"]["error"]
            assert box.refused == 3 and box.messages == []

            # The second stage (2 h) notifies the director, whom this channel file does not name.
            clock.set(T0 + timedelta(hours=2))
            got = await eventually(lambda: outcomes(s, opened.case_id, 2))
            [unrouted] = [e for e in got if e["data"]["to"] == "director"]
            assert unrouted["data"]["status"] == "failed" and unrouted["data"]["attempts"] == 0
            assert "no route for 'director'" in unrouted["data"]["error"]
            listed = (
                await http.get("/v1/notifications", params={"case_id": opened.case_id}, headers=OFFICER)
            ).json()
            assert sorted(n["state"] for n in listed) == ["failed", "failed"]


async def chains(http, case_id: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    r = await http.get("/v1/chains", params={"case_id": case_id}, headers=OFFICER)
    return r.json()  # type: ignore[no-any-return]


async def notifications(http, case_id: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    r = await http.get("/v1/notifications", params={"case_id": case_id}, headers=OFFICER)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def holds(check: Callable[[], bool]) -> bool:
    """A plain condition as the async check `eventually` polls."""
    return check()
