"""Who a notify or refer action reaches, and what they are sent: plain Python, no I/O.

The channel file (YAML, beside the rule set: rules/channels.yaml, or the file named by
LINDUNGI_ESCALATION_CHANNELS) names contacts (an email address list, or a partner's webhook)
and routes: for an action's recipient (`to` of notify, `partner` of refer), optionally only for
some rules, regions and levels, which contacts are told. Every route that matches adds its
contacts; an action no route matches fails visibly (on the case timeline), never silently.

What is sent is the minimum a receiver needs: the case link and id, the rule, its reason, the
level, severity, category and country. No names, identity numbers or other personal data, and
none ever in a subject line or a webhook URL (escalation does not hold any).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.events.escalation import EscalationAction
from shared.vocab import Region, region_of

NOTIFICATION_NS = uuid.UUID("7c5e0f6e-3b8a-4d0e-9a51-0b7f7a1f2c64")
DEFAULT_CHANNELS = Path(__file__).parent / "rules" / "channels.yaml"
SIGNATURE_HEADER = "X-Lindungi-Signature"  # "t=<unix seconds>,sha256=<hex HMAC of '<t>.<body>'>"
NOTIFICATION_HEADER = "X-Lindungi-Notification-Id"

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Webhook(_Strict):
    url: str = Field(description="the partner's endpoint; static, so it carries no personal data")
    secret: str = Field(
        pattern=_NAME, description="name of the signing secret in LINDUNGI_WEBHOOK_SECRETS (never the secret)"
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/?#]+[^\s]*$", url):
            raise ValueError("an http(s) URL")
        if "{" in url or "?" in url:
            raise ValueError("a fixed URL, no query or placeholders: what is sent goes in the signed body")
        return url


class Contact(_Strict):
    """One receiver: a list of email addresses, or a webhook."""

    email: list[str] | None = Field(None, min_length=1, max_length=20)
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _one(self) -> Contact:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give either email or webhook")
        for address in self.email or []:
            if not _EMAIL.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return self

    @property
    def channel(self) -> Literal["email", "webhook"]:
        return "email" if self.email is not None else "webhook"


class Route(_Strict):
    """Who hears of an action for `to`; each filter left out matches everything."""

    to: str = Field(min_length=1, description="a notify action's `to` or a refer action's `partner`")
    rules: list[str] | None = Field(None, min_length=1)
    regions: list[Region] | None = Field(None, min_length=1)
    levels: list[int] | None = Field(
        None, min_length=1, description="the level the action's stage escalates to"
    )
    contacts: list[str] = Field(min_length=1)

    @field_validator("levels")
    @classmethod
    def _levels(cls, levels: list[int] | None) -> list[int] | None:
        if levels is not None and any(not 0 <= level <= 3 for level in levels):
            raise ValueError("levels are 0..3")
        return levels


class Channels(_Strict):
    contacts: dict[str, Contact]
    routes: list[Route]

    @field_validator("contacts")
    @classmethod
    def _names(cls, contacts: dict[str, Contact]) -> dict[str, Contact]:
        for name in contacts:
            if not re.match(_NAME, name):
                raise ValueError(f"contact name {name!r}: lowercase letters, digits and '-'")
        return contacts

    @model_validator(mode="after")
    def _known(self) -> Channels:
        for index, route in enumerate(self.routes):
            for name in route.contacts:
                if name not in self.contacts:
                    raise ValueError(f"routes[{index}] names the unknown contact {name!r}")
        return self


class InvalidChannels(ValueError):
    """A channel file refused whole, each problem named by field and reason."""


def load_channels(text: str) -> Channels:
    """Parse and validate a channel file; raise InvalidChannels naming each problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidChannels(f"not valid YAML: {exc}".splitlines()[0]) from None
    try:
        return Channels.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise InvalidChannels("; ".join(problems)) from None


@dataclass(frozen=True)
class Notification:
    """One message to one contact for one action."""

    id: str
    contact: str | None
    channel: Literal["email", "webhook"] | None


def recipient(action: EscalationAction) -> str:
    """Who the action names: the role of a notify, the partner of a refer."""
    return action.notify or action.partner or ""


def route(channels: Channels, action: EscalationAction) -> list[Notification]:
    """The notifications an action makes: one per contact its routes name (none if no route matches)."""
    to = recipient(action)
    region = region_of(action.country) if action.country else None
    names: list[str] = []
    for route in channels.routes:
        if route.to != to:
            continue
        if route.rules is not None and action.rule_id not in route.rules:
            continue
        if route.regions is not None and region not in route.regions:
            continue
        if route.levels is not None and action.level not in route.levels:
            continue
        names.extend(name for name in route.contacts if name not in names)
    return [
        Notification(notification_id(action.action_id, c), c, channels.contacts[c].channel) for c in names
    ]


def notification_id(action_id: str, contact: str | None) -> str:
    """Deterministic: a redelivered action makes the same notifications."""
    return uuid.uuid5(NOTIFICATION_NS, f"{action_id}|{contact or '-'}").hex


def case_url(console_url: str, case_id: str) -> str:
    return f"{console_url.rstrip('/')}/cases/{case_id}"


def message(action: EscalationAction, notification_id: str, *, console_url: str) -> dict[str, Any]:
    """What a receiver is told (the webhook's JSON body; the email says the same in words)."""
    return {
        "notification_id": notification_id,
        "kind": action.kind.value,
        "to": recipient(action),
        "case_id": action.case_id,
        "case_url": case_url(console_url, action.case_id or ""),
        "rule_id": action.rule_id,
        "reason": action.reason,
        "level": action.level,
        "severity": action.severity.value if action.severity else None,
        "category": action.category.value if action.category else None,
        "country": action.country,
        "fired_at": action.fired_at.isoformat(),
    }


def subject_line(msg: dict[str, Any]) -> str:
    """An email subject: the case id and what happened, nothing about the person."""
    what = "referred to " + str(msg["to"]) if msg["kind"] == "refer" else "escalation notice"
    level = f", level {msg['level']}" if msg.get("level") is not None else ""
    severity = f"{msg['severity']} " if msg.get("severity") else ""
    return f"[Lindungi] {severity}case {msg['case_id']}: {what}{level}"


def email_text(msg: dict[str, Any]) -> str:
    """The plain-text body of an email."""
    lines = [
        "Lindungi: a rule needs your attention on a protection case.",
        "",
        f"Case:      {msg['case_url']}",
        f"Rule:      {msg['rule_id']}",
        f"Reason:    {msg['reason']}",
    ]
    if msg.get("level") is not None:
        lines.append(f"Level:     {msg['level']} (0 desk officer, 1 supervisor, 2 director, 3 inter-agency)")
    for label, key in (("Severity", "severity"), ("Category", "category"), ("Country", "country")):
        if msg.get(key):
            lines.append(f"{label + ':':<10} {msg[key]}")
    lines += ["", f"Notification {msg['notification_id']}, fired at {msg['fired_at']}."]
    return "\n".join(lines) + "\n"


def webhook_body(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: HMAC-SHA256 over '<timestamp>.<body>' (a receiver checks both)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={mac}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does with the signature header (tests and partners' reference)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "sha256" not in parts:
        return False
    return hmac.compare_digest(signature(secret, body, int(parts["t"])), header)


def backoff(attempt: int, *, base: float, cap: float = 3600.0) -> float:
    """Seconds to wait after the attempt-th failed try: base, 2 base, 4 base... at most cap."""
    return float(min(cap, base * 2 ** (attempt - 1)))
