"""What every console page shares: the reader's context, rendering, and calls that may fail softly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console import nav
from services.console.backends import Backends, Reply, ServiceDown
from services.console.i18n import N_, Formats, locale_of, translations, zone_of
from services.console.labels import LABELS
from services.console.oidc import OidcSignIn
from services.console.session import COOKIE, Sealer, Session, SignIn
from services.console.settings import ConsoleSettings
from shared.clock import Clock

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "lindungi_lang"
TZ_COOKIE = "lindungi_tz"

SERVICE_NAMES = {
    "registry": N_("registry"),
    "intake": N_("intake"),
    "casework": N_("casework"),
    "escalation": N_("escalation"),
    "repatriation": N_("repatriation"),
}


@dataclass
class Console:
    """The console's parts, built once per app."""

    settings: ConsoleSettings
    clock: Clock
    backends: Backends
    sealer: Sealer
    sign_in: SignIn
    env: Environment
    oidc: OidcSignIn | None = None  # the OpenID provider's sign-in, when an issuer is configured


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    return env


class NeedSignIn(Exception):
    """No valid session: go to the sign-in page and come back."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class NotAllowed(Exception):
    """This role may not use the page."""


@dataclass
class Part:
    """What one call for part of a page gave: data, or why not (service down, refused)."""

    data: Any = None
    service: str = ""
    down: bool = False
    status: int = 200
    errors: list[dict[str, Any]] = field(default_factory=list)
    next: str | None = None  # a list's next-page cursor

    @property
    def ok(self) -> bool:
        return not self.down and not self.errors


@dataclass
class Ctx:
    """One request's reader: who, in which language and time zone."""

    request: Request
    console: Console
    session: Session | None
    locale: str
    fmt: Formats

    def _(self, message: str) -> str:
        return translations(self.locale).ugettext(message)

    @property
    def user(self) -> Session:
        assert self.session is not None
        return self.session

    def need(self, page_key: str) -> None:
        """Refuse a page the user's roles do not open."""
        if not nav.may(self.user.roles, nav.BY_KEY[page_key].roles):
            raise NotAllowed(page_key)

    async def call(self, service: str, method: str, path: str, **kw: Any) -> Part:
        """Call a service as the reader; a refusal or an outage becomes a Part, never an exception."""
        try:
            r: Reply = await self.console.backends.call(
                service, method, path, credential=self.user.credential, **kw
            )
        except ServiceDown:
            return Part(service=service, down=True, status=503)
        if r.ok:
            return Part(data=r.body, service=service, status=r.status, next=r.next)
        return Part(service=service, status=r.status, errors=r.errors())

    async def get(self, service: str, path: str, **kw: Any) -> Part:
        return await self.call(service, "GET", path, **kw)

    async def post(self, service: str, path: str, **kw: Any) -> Part:
        return await self.call(service, "POST", path, **kw)

    def render(self, template: str, *, status: int = 200, **data: Any) -> HTMLResponse:
        catalogue = translations(self.locale)
        pages = nav.pages_for(self.session.roles) if self.session else []
        html = self.console.env.get_template(template).render(
            _=catalogue.ugettext,
            gettext=catalogue.ugettext,
            ngettext=catalogue.ungettext,
            fmt=self.fmt,
            session=self.session,
            pages=pages,
            path=self.request.url.path,
            full_path=self.request.url.path
            + (f"?{self.request.url.query}" if self.request.url.query else ""),
            lang=self.locale,
            poll_ms=self.console.settings.live_poll_ms,
            service_names=SERVICE_NAMES,
            nav=nav,
            label=lambda v: catalogue.ugettext(LABELS[v]) if v in LABELS else v,
            **data,
        )
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def reader(request: Request) -> Ctx:
    """The request's context, signed in or not."""
    console = console_of(request)
    session = console.sealer.open(request.cookies.get(COOKIE))
    locale = locale_of(request.cookies.get(LANG_COOKIE), console.settings.default_locale)
    zone = zone_of(request.cookies.get(TZ_COOKIE), console.settings.default_timezone)
    return Ctx(request, console, session, locale, Formats(locale, zone, console.clock.now()))


def signed_in(request: Request) -> Ctx:
    """FastAPI dependency: the signed-in reader, else a redirect to the sign-in page."""
    ctx = reader(request)
    if ctx.session is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise NeedSignIn(request.url.path + query)
    return ctx


def sign_in_url(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path, safe='')}"


def new_key() -> str:
    """An idempotency key for one rendering of a form: a retry or double click repeats it."""
    return uuid.uuid4().hex


def safe_next(value: str | None) -> str | None:
    """A local path to return to (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None
