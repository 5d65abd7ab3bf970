"""The bearer credential is a declared security scheme: OpenAPI says which endpoints need it, and a
missing or malformed one is still our 401 (body naming the field, WWW-Authenticate: Bearer)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from services.registry.app import create_app as registry_app
from shared.auth import Principal, require
from shared.service import install_problem_handlers
from shared.settings import Settings


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/closed")
    def closed(who: Principal = Depends(require("operator"))) -> str:
        return who.id

    @app.get("/open")
    def open_() -> str:
        return "ok"

    install_problem_handlers(app)  # as every service's app (shared.service.create_app)
    return app


def test_openapi_declares_the_bearer_scheme_on_protected_endpoints_only() -> None:
    spec = _app().openapi()
    schemes = spec["components"]["securitySchemes"]
    assert [s for s in schemes.values() if s["type"] == "http" and s["scheme"] == "bearer"]
    (name,) = schemes
    assert spec["paths"]["/closed"]["get"]["security"] == [{name: []}]
    assert "security" not in spec["paths"]["/open"]["get"]


def test_a_service_says_which_of_its_endpoints_need_the_credential() -> None:
    spec = registry_app(Settings(namespace="openapi_")).openapi()
    assert spec["paths"]["/v1/departures"]["post"].get("security")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwdw==", "Bearer ", "Bearer    ", "bearer"])
async def test_no_usable_bearer_credential_is_our_401(header: str | None) -> None:
    transport = httpx.ASGITransport(app=_app())
    headers = {"Authorization": header} if header is not None else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        got = await client.get("/closed", headers=headers)
        assert (await client.get("/open")).status_code == 200
    assert got.status_code == 401
    assert got.headers["www-authenticate"] == "Bearer"
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["errors"] == [{"field": "authorization", "reason": "a bearer credential is required"}]
    assert got.json()["status"] == 401 and got.json()["title"] == "Unauthorized"
