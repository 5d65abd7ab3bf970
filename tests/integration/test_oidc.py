"""Sign-in through the real OpenID provider (deploy/local/oidc): services accept its bearer JWTs
(signature by its JWKS, issuer, audience, expiry) with roles and jurisdiction from the claims,
on the real broker and database; tokens that fail any check are 401."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.local.run import free_port
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared import oidc as verifier
from shared.clock import ManualClock
from shared.settings import Settings
from tests.integration.test_intake_api import incident
from tests.support.harness import running
from tests.support.oidc import client_token, user_tokens
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["reason"])


async def test_a_missions_client_credentials_token_posts_within_its_jurisdiction_only(
    settings: Settings, oidc: str
) -> None:
    token = await asyncio.to_thread(client_token, oidc, "kbri-seoul")
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        ok = await intake.post("/v1/incidents", json=incident(), headers=auth(token))
        assert ok.status_code == 202, ok.text
        mine = (await intake.get(f"/v1/incidents/{ok.json()['incident_id']}", headers=auth(token))).json()
        assert mine["mission_id"] == "kbri-seoul"
        outside = await intake.post("/v1/incidents", json=incident(country="JP"), headers=auth(token))
        assert outside.status_code == 403
        assert outside.json()["errors"] == [
            {"field": "country", "reason": "JP is outside this mission's jurisdiction (KR)"}
        ]
        # development credentials keep working beside the provider's tokens in development
        assert (await intake.get("/v1/incidents", headers=bearer("kbri-seoul"))).status_code == 200


async def test_users_signed_in_at_the_provider_carry_their_roles_and_provinces(
    settings: Settings, oidc: str
) -> None:
    officer = (await asyncio.to_thread(user_tokens, oidc, "officer-ani"))["access_token"]
    region = (await asyncio.to_thread(user_tokens, oidc, "region-dki"))["access_token"]
    async with (
        running(registry_app(settings, ManualClock(NOW))) as registry,
        running(intake_app(settings, ManualClock(NOW))) as intake,
    ):
        assert (await registry.get("/v1/departures", headers=auth(officer))).status_code == 200
        # an officer is no mission: the provider's token gives the officer role only
        desk = await intake.post("/v1/incidents", json=incident(), headers=auth(officer))
        assert desk.status_code == 403
        # a region user: statistics of its own province, nothing of another's, no departures
        own = await registry.get(
            "/v1/statistics/departures", params={"province": "DKI Jakarta"}, headers=auth(region)
        )
        assert own.status_code == 200, own.text
        other = await registry.get(
            "/v1/statistics/departures", params={"province": "Jawa Barat"}, headers=auth(region)
        )
        assert other.status_code == 403 and other.json()["errors"][0]["field"] == "province"
        assert (await registry.get("/v1/departures", headers=auth(region))).status_code == 403


async def test_tokens_failing_a_check_are_401(
    settings: Settings, oidc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = await asyncio.to_thread(client_token, oidc, "kbri-seoul")
    other_audience = await asyncio.to_thread(client_token, oidc, "other-app")
    id_token = (await asyncio.to_thread(user_tokens, oidc, "officer-ani"))["id_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    real_kid = jwt.get_unverified_header(good)["kid"]
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forged(kid: str, **over: Any) -> str:
        return jwt.encode({**claims, **over}, mine, algorithm="RS256", headers={"kid": kid})

    async with running(intake_app(settings, ManualClock(NOW))) as intake:

        async def status(token: str) -> tuple[int, str]:
            r = await intake.get("/v1/incidents", headers=auth(token))
            return r.status_code, reason(r) if r.status_code != 200 else ""

        assert await status(good) == (200, "")
        assert await status(other_audience) == (401, "token refused: not issued for audience 'lindungi'")
        assert await status(id_token) == (401, "token refused: not issued for audience 'lindungi'")
        assert await status(forged(real_kid)) == (401, "token refused: the signature does not verify")
        assert await status(forged("a-key-of-my-own")) == (
            401,
            "token refused: signed with a key the provider does not publish",
        )
        hs = jwt.encode(claims, "secret" * 8, algorithm="HS256", headers={"kid": real_kid})
        assert await status(hs) == (401, "token refused: algorithm 'HS256' is not accepted")
        assert (await status(good[:-4] + "AAAA"))[0] == 401

        # expiry by the verifier's clock: accepted within the leeway, refused past it
        process = verifier.load_verifier()
        assert process is not None
        process.clock = ManualClock(datetime.fromtimestamp(claims["exp"] + verifier.LEEWAY - 1, UTC))
        assert await status(good) == (200, "")
        process.clock = ManualClock(datetime.fromtimestamp(claims["exp"] + verifier.LEEWAY + 1, UTC))
        assert await status(good) == (401, "token refused: expired")

        # an issuer other than the token's (keys from the same provider, so only iss differs)
        monkeypatch.setenv("LINDUNGI_OIDC_ISSUER", oidc + "elsewhere/")
        monkeypatch.setenv("LINDUNGI_OIDC_JWKS_URL", oidc + "keys")
        verifier.reset()
        assert await status(good) == (401, f"token refused: not issued by {oidc}elsewhere/")


async def test_unknown_key_ids_refresh_the_keys_at_most_once_per_interval(oidc: str) -> None:
    good = await asyncio.to_thread(client_token, oidc, "kbri-seoul")
    v = verifier.Verifier(oidc, "lindungi", min_refresh_seconds=60)
    assert (await asyncio.to_thread(v.claims, good))["sub"] == "kbri-seoul"
    assert v.fetches == 1
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(good, options={"verify_signature": False})
    for _ in range(20):
        token = jwt.encode(claims, mine, algorithm="RS256", headers={"kid": uuid.uuid4().hex})
        with pytest.raises(verifier.InvalidToken, match="does not publish"):
            await asyncio.to_thread(v.claims, token)
    assert v.fetches == 1  # the forged key ids caused no fetch inside the interval
    # past the interval an unknown kid fetches again (how a rotated key is picked up)
    v2 = verifier.Verifier(oidc, "lindungi", min_refresh_seconds=0)
    await asyncio.to_thread(v2.claims, good)
    with pytest.raises(verifier.InvalidToken):
        await asyncio.to_thread(
            v2.claims, jwt.encode(claims, mine, algorithm="RS256", headers={"kid": "rotated"})
        )
    assert v2.fetches == 2
    # a real clock: the token the provider just issued is valid for an hour at most
    exp = datetime.fromtimestamp(claims["exp"], UTC)
    assert timedelta(0) < exp - datetime.fromtimestamp(time.time(), UTC) <= timedelta(minutes=61)


async def test_a_provider_whose_keys_cannot_be_read_is_503_with_retry_after_and_is_not_asked_per_request(
    settings: Settings, oidc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token may be good: 401 would tell a mission's client its credential is wrong."""
    good = await asyncio.to_thread(client_token, oidc, "kbri-seoul")
    closed = free_port()  # nothing listens there: the keys cannot be read
    monkeypatch.setenv("LINDUNGI_OIDC_JWKS_URL", f"http://127.0.0.1:{closed}/keys")
    verifier.reset()
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        answers = [await intake.get("/v1/incidents", headers=auth(good)) for _ in range(5)]
    assert [r.status_code for r in answers] == [503] * 5
    assert all(1 <= int(r.headers["retry-after"]) <= verifier.MIN_REFRESH_SECONDS for r in answers)
    assert "could not be read" in reason(answers[0])
    assert verifier.load_verifier().fetches == 0  # type: ignore[union-attr]  (none succeeded)
    # one failed fetch, then a pause: a provider outage is not a fetch per request
    attempts = 0

    def unreachable(url: str) -> Any:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused")

    v = verifier.Verifier(oidc, "lindungi", get=unreachable, min_refresh_seconds=60)
    for _ in range(10):
        with pytest.raises(verifier.ProviderUnavailable):
            await asyncio.to_thread(v.claims, good)
    assert attempts == 1
