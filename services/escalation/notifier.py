"""Notify and refer actions delivered: email over SMTP and signed webhooks, at least once.

escalation consumes its own actions topic: each notify or refer action becomes one notification
per contact its routes name (channels.py), stored by a deterministic id (a redelivered action
adds nothing). A loop sends what is due; a try is claimed by its number, so one replica makes
it; a failure waits (doubling backoff, on the injected clock) and is tried again up to
`notify_attempts` times; a refusal that no retry can fix (SMTP 5xx, HTTP 4xx other than 408 and
429, no signing secret) ends it at once. The outcome (sent, or failed after N tries) is stored
with its NotificationDelivery event in one write (the outbox), and casework puts it on the case
timeline. Receivers drop repeats by the notification id (Message-ID, X-Lindungi-Notification-Id).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from services.escalation import channels, notification_store
from shared.aio import wait_set
from shared.clock import utc
from shared.envelope import Envelope
from shared.events.escalation import ActionKind, DeliveryStatus, EscalationAction, NotificationDelivery
from shared.mongo import Doc
from shared.outbox import Outbox
from shared.service import Runtime
from shared.vocab import region_of

log = logging.getLogger("lindungi.escalation.notify")

FINAL = ("sent", "failed", "withdrawn")


class Refused(Exception):
    """A receiver refused for good: trying again cannot help."""


class Notifier:
    """One replica's notification side: actions in, deliveries out, outcomes onto the timeline."""

    def __init__(self, rt: Runtime, *, poll_seconds: float = 0.5, channels_file: Path | None = None) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        settings = rt.settings
        self.channels_file = channels_file or Path(settings.escalation_channels or channels.DEFAULT_CHANNELS)
        self.channels = channels.Channels(contacts={}, routes=[])
        self.attempts = max(1, settings.notify_attempts)
        self.backoff_seconds = settings.notify_backoff_seconds
        self.timeout = settings.notify_timeout_seconds
        self._wake = asyncio.Event()
        self.sent = 0

    def startup(self) -> None:
        """Load the channel file; a broken file stops the service at start, loudly."""
        self.channels = channels.load_channels(self.channels_file.read_text())
        log.info(
            "channels: %d contacts, %d routes from %s",
            len(self.channels.contacts),
            len(self.channels.routes),
            self.channels_file,
        )

    # ------------------------------------------------------------ actions in

    async def on_action(self, env: Envelope, action: EscalationAction) -> None:
        """Queue a notify or refer action's notifications, once per action and contact."""
        if action.kind not in (ActionKind.NOTIFY, ActionKind.REFER) or not action.case_id:
            return
        now = self.rt.clock.now()
        routed = channels.route(self.channels, action)
        unrouted = not routed
        if unrouted:
            routed = [channels.Notification(channels.notification_id(action.action_id, None), None, None)]
        for routed_to in routed:
            msg = channels.message(action, routed_to.id, console_url=self.rt.settings.console_url)
            record: Doc = {
                "_id": routed_to.id,
                "action_id": action.action_id,
                "rule_id": action.rule_id,
                "kind": action.kind.value,
                "to": channels.recipient(action),
                "case_id": action.case_id,
                # for the notification inbox (a desk region's): where, never who
                "country": action.country,
                "region": region_of(action.country).value if action.country else None,
                "contact": routed_to.contact,
                "channel": routed_to.channel,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
            }
            stored = await notification_store.add_notification(self.rt.db, record)
            if stored.get("state") in FINAL:
                continue  # done before: a redelivered action
            delivery: Doc = {**record, "message": msg, "next_at": now}
            if unrouted and not await notification_store.withdrawn(self.rt.db, action.action_id):
                error = f"no route for {channels.recipient(action)!r} in the channel file"
                fields = {"state": "failed", "finished_at": now, "last_error": error}
                delivery.update(fields)
                delivery = Outbox.on_insert(delivery, [self._outcome(delivery, DeliveryStatus.FAILED, error)])
                log.warning("notification %s: %s", routed_to.id, error)
            await notification_store.add_delivery(self.rt.db, delivery)
            if unrouted:
                self.rt.relay.wake(routed_to.id, collection=notification_store.DELIVERIES)
        self._wake.set()

    # ------------------------------------------------------------ deliveries out

    async def deliver_due(self) -> int:
        """Try every delivery due now once; return how many were sent here."""
        due = await notification_store.due_deliveries(self.rt.db, self.rt.clock.now(), 100)
        gate = asyncio.Semaphore(10)

        async def one(delivery: Doc) -> bool:
            async with gate:
                return await self._try(delivery)

        results = await asyncio.gather(*(one(delivery) for delivery in due))
        return sum(results)

    async def _try(self, delivery: Doc) -> bool:
        db = self.rt.db
        record = await notification_store.notification(db, delivery["_id"])
        if record is not None and record.get("state") in FINAL:
            await db[notification_store.DELIVERIES].delete_one(
                {"_id": delivery["_id"]}
            )  # re-queued after it finished
            return False
        now = self.rt.clock.now()
        tried = int(delivery["attempts"]) + 1
        wait = channels.backoff(tried, base=self.backoff_seconds)
        claimed = await notification_store.claim_try(
            db,
            delivery,
            next_at=now + timedelta(seconds=wait),
            trying_until=now + timedelta(seconds=2 * self.timeout),
        )
        if claimed is None:
            return False  # another replica took this try
        gone = await notification_store.withdrawn(db, delivery["action_id"])
        if gone is not None:
            # the tries made so far (this claimed one sends nothing)
            await self._finish(delivery, DeliveryStatus.WITHDRAWN, withdrawn_reason(gone["at"]))
            return False
        try:
            await self._send(claimed)
        except Refused as exc:
            await self._finish(claimed, DeliveryStatus.FAILED, f"refused: {exc}")
            return False
        except Exception as exc:  # the receiver is away or slow: try again later
            error = f"{type(exc).__name__}: {exc}"[:300]
            if tried >= self.attempts:
                await self._finish(claimed, DeliveryStatus.FAILED, error)
            else:
                await notification_store.note_failure(db, delivery["_id"], error)
                log.info("notification %s: try %d failed, next in %.0f s", delivery["_id"], tried, wait)
                # withdrawn while this try was in flight: say so now, not at the next try
                gone = await notification_store.withdrawn(db, delivery["action_id"])
                if gone is not None:
                    await self._finish(claimed, DeliveryStatus.WITHDRAWN, withdrawn_reason(gone["at"]))
            return False
        await self._finish(claimed, DeliveryStatus.SENT, None)
        self.sent += 1
        return True

    async def _finish(self, delivery: Doc, status: DeliveryStatus, error: str | None) -> None:
        await finish(self.rt, delivery, status, error)

    def _outcome(self, delivery: Doc, status: DeliveryStatus, error: str | None) -> Doc:
        return outcome(self.rt, delivery, status, error)

    async def _send(self, delivery: Doc) -> None:
        contact = self.channels.contacts.get(delivery.get("contact") or "")
        if contact is None:
            raise Refused(f"the contact {delivery.get('contact')!r} is no longer in the channel file")
        msg: dict[str, Any] = delivery["message"]
        if contact.email is not None:
            await self._email(contact.email, msg)
        else:
            assert contact.webhook is not None
            await self._webhook(contact.webhook, msg)

    async def _email(self, to: list[str], msg: dict[str, Any]) -> None:
        settings = self.rt.settings
        mail = EmailMessage()
        mail["From"] = settings.smtp_sender
        mail["To"] = ", ".join(to)
        mail["Subject"] = channels.subject_line(msg)
        mail["Message-ID"] = f"<{msg['notification_id']}@lindungi>"
        mail[channels.NOTIFICATION_HEADER] = msg["notification_id"]
        mail.set_content(channels.email_text(msg))
        try:
            await aiosmtplib.send(
                mail,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                start_tls=settings.smtp_starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(500 <= r.code < 600 for r in exc.recipients):
                raise Refused("; ".join(f"{r.code} {r.message}" for r in exc.recipients)) from None
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise Refused(f"{exc.code} {exc.message}") from None
            raise

    async def _webhook(self, hook: channels.Webhook, msg: dict[str, Any]) -> None:
        secret = self.rt.settings.webhook_secrets.get(hook.secret)
        if secret is None:
            raise Refused(f"no signing secret {hook.secret!r} in LINDUNGI_WEBHOOK_SECRETS")
        body = channels.webhook_body(msg)
        stamp = int(self.rt.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            channels.SIGNATURE_HEADER: channels.signature(secret.get_secret_value(), body, stamp),
            channels.NOTIFICATION_HEADER: msg["notification_id"],
        }
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(hook.url, content=body, headers=headers)
        if 200 <= response.status_code < 300:
            return
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise Refused(f"HTTP {response.status_code}")
        raise RuntimeError(f"HTTP {response.status_code}")

    # ------------------------------------------------------------ loop

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Send what is due and fold finished deliveries into their records, forever."""
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
                await notification_store.fold_finished(self.rt.db)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification loop failed; retrying")
            await wait_set(self._wake, self.poll_seconds)


# ------------------------------------------------------------ outcomes (the notifier's and the engine's)


def withdrawn_reason(met_at: object) -> str:
    return f"the deadline was met at {met_at}"


def outcome(rt: Runtime, delivery: Doc, status: DeliveryStatus, error: str | None) -> Doc:
    """The outbox entry of a delivery's outcome (NotificationDelivery), one id per outcome."""
    ev = NotificationDelivery(
        notification_id=delivery["_id"],
        action_id=delivery["action_id"],
        rule_id=delivery["rule_id"],
        kind=ActionKind(delivery["kind"]),
        case_id=delivery["case_id"],
        to=delivery["to"],
        contact=delivery.get("contact"),
        channel=delivery.get("channel"),
        status=status,
        attempts=int(delivery.get("attempts", 0)),
        error=error,
        at=rt.clock.now(),
    )
    # One id per outcome: a repeat on the wire is dropped by casework.
    return rt.outbox.entry(ev, key=delivery["case_id"], id=f"{delivery['_id']}:{status.value}")


async def finish(rt: Runtime, delivery: Doc, status: DeliveryStatus, error: str | None) -> bool:
    """Store a delivery's outcome with its event, once (only while it is pending)."""
    now = rt.clock.now()
    fields: Doc = {"state": status.value, "finished_at": now}
    if error:
        fields["last_error"] = error
    if not await notification_store.finish_delivery(
        rt.db, delivery["_id"], fields, [outcome(rt, delivery, status, error)]
    ):
        return False
    rt.relay.wake(delivery["_id"], collection=notification_store.DELIVERIES)
    log.info("notification %s %s after %d tries", delivery["_id"], status.value, delivery["attempts"])
    return True


async def withdraw_pending(rt: Runtime, action_ids: list[str], *, met_at: object) -> int:
    """Withdrawn actions: their deliveries waiting for a try end as withdrawn now (on the case
    timeline at once, not at their next try); a try in flight decides itself (it may be sending,
    and checks the withdrawal once it failed). How many ended here."""
    now = rt.clock.now()
    ended = 0
    for delivery in await notification_store.pending_of_actions(rt.db, action_ids):
        in_flight = delivery.get("trying_until")
        if in_flight is not None and utc(in_flight) > now:
            continue
        ended += await finish(rt, delivery, DeliveryStatus.WITHDRAWN, withdrawn_reason(met_at))
    return ended
