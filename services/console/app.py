"""console service: `uvicorn --factory services.console.app:create_app --port 8000`."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console import nav
from services.console import oidc as oidc_sign_in
from services.console.backends import Backends
from services.console.i18n import LOCALES, translations
from services.console.pages import desk, mission, province, registry, repatriation, supervision
from services.console.session import COOKIE, DirectorySignIn, Sealer, Session, SignIn
from services.console.settings import ConsoleSettings, refuse_unsafe
from services.console.web import (
    LANG_COOKIE,
    Console,
    NeedSignIn,
    NotAllowed,
    make_env,
    reader,
    safe_next,
    sign_in_url,
)
from shared import logs
from shared.auth import static_credentials_accepted
from shared.clock import Clock, clock_for
from shared.metrics import CONTENT_TYPE, HTTPMetrics, Metrics

PORT = 8000
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("lindungi.console")


class Health(BaseModel):
    status: str
    service: str


def create_app(
    settings: ConsoleSettings | None = None,
    clock: Clock | None = None,
    *,
    sign_in: SignIn | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The console: pages over the five services' APIs, signed in with a sealed cookie.

    Longer than 60 lines on purpose: the sign-in routes are closures over this app's settings,
    sealer and sign-in methods (one console per call, as tests build several); the pages
    themselves live in services/console/pages, one router each.
    """
    settings = settings or ConsoleSettings()
    refuse_unsafe(settings)
    logs.configure("console")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for locale in LOCALES:
        translations(locale)  # a broken catalog stops the start, not the first page
    console = Console(
        settings=settings,
        clock=clock or clock_for(settings.clock_speed, settings.clock_epoch),
        backends=Backends(
            settings.service_urls(), timeout=settings.service_timeout_seconds, transport=transport
        ),
        sealer=Sealer(
            settings.session_secret.get_secret_value(), max_age_seconds=int(settings.session_hours * 3600)
        ),
        sign_in=sign_in or DirectorySignIn(),
        env=make_env(),
        oidc=oidc_sign_in.OidcSignIn(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret.get_secret_value(),
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
        )
        if settings.oidc_issuer
        else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await console.backends.close()

    app = FastAPI(
        title="Lindungi console",
        description="The web page of Lindungi: it owns no case data and calls the services as the user.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = console
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    metrics = Metrics("console")  # HTTP only: the console consumes and stores nothing
    app.add_middleware(HTTPMetrics, metrics=metrics)

    @app.exception_handler(NeedSignIn)
    async def need_sign_in(_: Request, exc: NeedSignIn) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, _: NotAllowed) -> Response:
        return reader(request).render("problem.html", status=403, problem="forbidden")

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        problem = "not_found" if exc.status_code == 404 else "invalid"
        return reader(request).render("problem.html", status=exc.status_code, problem=problem)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # Never a stack trace on the page: a plain message, and the details in the log.
        log.error("page failed", exc_info=exc)
        try:
            return reader(request).render("problem.html", status=500, problem="crashed")
        except Exception:
            return HTMLResponse("<!doctype html><title>Lindungi</title><p>Error</p>", status_code=500)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok", service="console")

    @app.get("/readyz", response_model=Health, tags=["health"])
    async def readyz() -> Health:
        """The console is ready: it needs no service to start (each page says which one is down)."""
        return Health(status="ok", service="console")

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics_text() -> Response:
        """Prometheus metrics of this replica (HTTP duration by route and status)."""
        return Response(await metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        """The user's first page, or the sign-in page."""
        ctx = reader(request)
        if ctx.session is None:
            return RedirectResponse("/sign-in", status_code=303)
        return RedirectResponse(nav.home_of(ctx.session.roles), status_code=303)

    def signed_in(session: Session, to: str) -> Response:
        """Go on with the sealed session cookie set (it ends with the credential inside it)."""
        out = RedirectResponse(to, status_code=303)
        max_age = console.sealer.max_age
        if session.expires_at is not None:
            # wall-clock time, as the browser's and Sealer.open's (not the console's clock)
            max_age = max(0, min(max_age, int(session.expires_at - time.time())))
        out.set_cookie(
            COOKIE,
            console.sealer.seal(session),
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
            path="/",
        )
        return out

    def sign_in_form(request: Request, *, next_path: str, status: int = 200, **problem: object) -> Response:
        return reader(request).render(
            "sign_in.html",
            status=status,
            next=next_path,
            user_id=str(problem.get("user_id", "")),
            failed=bool(problem.get("failed")),
            oidc_problem=problem.get("oidc_problem"),
            oidc=console.oidc is not None,
            form=static_credentials_accepted(),
        )

    def finish_sign_in(
        request: Request, session: Session | None, next_path: str, *, status: int = 401, **problem: object
    ) -> Response:
        """Go on signed in (to `next_path`, else the roles' home page), or show the form again
        with the problem (the OpenID callback's and the form's one way to end a sign-in)."""
        if session is None:
            return sign_in_form(request, next_path=next_path, status=status, **problem)
        return signed_in(session, next_path or nav.home_of(session.roles))

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str | None = None) -> Response:
        """The sign-in form (and the OpenID provider's button when an issuer is configured)."""
        return sign_in_form(request, next_path=safe_next(next) or "")

    @app.get("/auth/oidc/start")
    async def oidc_start(request: Request, next: str | None = None) -> Response:
        """Send the browser to the OpenID provider (authorization code flow with PKCE)."""
        if console.oidc is None:
            return RedirectResponse("/sign-in", status_code=303)
        base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        try:
            started = await console.oidc.start(f"{base}/auth/oidc/callback", safe_next(next) or "")
        except (httpx.HTTPError, oidc_sign_in.SignInFailed) as exc:
            log.warning("OpenID provider unreachable at sign-in: %s", type(exc).__name__)
            return sign_in_form(
                request, next_path=safe_next(next) or "", status=502, oidc_problem="unreachable"
            )
        out = RedirectResponse(started.url, status_code=303)
        out.set_cookie(
            oidc_sign_in.COOKIE,
            console.sealer.seal_json(started.remember),
            max_age=oidc_sign_in.MAX_AGE,
            httponly=True,
            samesite="lax",  # the provider's redirect back is a top-level GET: Lax sends it
            secure=settings.cookie_secure,
            path="/auth/oidc",
        )
        return out

    @app.get("/auth/oidc/callback")
    async def oidc_callback(
        request: Request,
        code: Annotated[str, Query(max_length=2000)] = "",
        state: Annotated[str, Query(max_length=200)] = "",
        error: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        """The provider sends the browser back here: check, exchange, sign in."""
        remembered = console.sealer.open_json(
            request.cookies.get(oidc_sign_in.COOKIE), max_age=oidc_sign_in.MAX_AGE
        )
        next_path = safe_next(str((remembered or {}).get("next") or "")) or ""
        session: Session | None = None
        status, problem = 401, ""
        if console.oidc is None or error or not code or not state:
            problem = f"provider: {error}" if error else "missing code or state"
        else:
            try:
                session = await console.oidc.finish(remembered, code=code, state=state)
            except oidc_sign_in.SignInFailed as exc:
                log.warning("OpenID sign-in refused: %s", exc)
                problem = str(exc)
            except httpx.HTTPError as exc:
                log.warning("OpenID provider unreachable at sign-in: %s", type(exc).__name__)
                status, problem = 502, "unreachable"
        out = finish_sign_in(request, session, next_path, status=status, oidc_problem=problem)
        out.delete_cookie(oidc_sign_in.COOKIE, path="/auth/oidc")
        return out

    @app.post("/sign-in", response_class=HTMLResponse)
    async def sign_in_post(
        request: Request,
        user_id: Annotated[str, Form(max_length=64)] = "",
        credential: Annotated[str, Form(max_length=512)] = "",
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        """Check the credential, set the sealed session cookie, go on."""
        session = (
            console.sign_in.authenticate(user_id, credential)
            if user_id and credential and static_credentials_accepted()
            else None
        )
        return finish_sign_in(request, session, safe_next(next) or "", failed=True, user_id=user_id)

    @app.post("/sign-out", response_class=HTMLResponse)
    async def sign_out() -> Response:
        """Forget the session."""
        out = RedirectResponse("/sign-in", status_code=303)
        out.delete_cookie(COOKIE, path="/")
        return out

    @app.post("/language", response_class=HTMLResponse)
    async def language(
        lang: Annotated[str, Form(pattern="^(id|en)$")], next: Annotated[str, Form(max_length=2000)] = "/"
    ) -> Response:
        """Switch between Bahasa Indonesia and English (remembered in a cookie)."""
        out = RedirectResponse(safe_next(next) or "/", status_code=303)
        out.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
        return out

    for module in (mission, desk, supervision, repatriation, province, registry):
        app.include_router(module.router)
    return app
