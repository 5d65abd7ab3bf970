"""Bearer JWTs of an OpenID Connect provider: checked against its published keys.

Set LINDUNGI_OIDC_ISSUER (and LINDUNGI_OIDC_AUDIENCE, default `lindungi`) and every service
accepts the access tokens the provider issues, besides (development) or instead of (production)
the hashed credentials of shared/auth.py. A token is accepted when its signature verifies with a
key of the provider's JWKS (found through the issuer's discovery document, or at
LINDUNGI_OIDC_JWKS_URL), its `iss` is the issuer, its `aud` holds the audience, and it has not
expired (by the verifier's clock, with LEEWAY seconds for clock skew). Keys are cached; a token
naming a key id that is not cached refreshes them, at most once per MIN_REFRESH_SECONDS (so a
stream of forged key ids cannot turn every request into a fetch from the provider).

What the claims say about the caller (shared/auth.principal_from_claims): `lindungi_roles`,
`lindungi_provinces` (region users) and `lindungi_mission` (a mission's id; its jurisdiction
comes from the mission directory, not from the token).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx
import jwt

from shared.clock import Clock, SystemClock

LEEWAY = 30  # seconds of clock skew tolerated on exp and nbf
MIN_REFRESH_SECONDS = 10.0
# Asymmetric only: a symmetric algorithm would let anyone holding the public key sign.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
DEFAULT_AUDIENCE = "lindungi"


class InvalidToken(Exception):
    """A bearer JWT that is not to be trusted; the message says why (safe to show the caller)."""


class Verifier:
    """Checks a provider's bearer JWTs: signature (JWKS), issuer, audience, expiry."""

    def __init__(
        self,
        issuer: str,
        audience: str = DEFAULT_AUDIENCE,
        *,
        jwks_url: str = "",
        clock: Clock | None = None,
        get: Callable[[str], Any] | None = None,
        min_refresh_seconds: float = MIN_REFRESH_SECONDS,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.clock = clock or SystemClock()
        self._jwks_url = jwks_url
        self._get = get or _get_json
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the JWKS was read (tests, metrics)

    def jwks_url(self) -> str:
        """Where the keys are: configured, or the issuer's discovery document's jwks_uri."""
        if not self._jwks_url:
            doc = self._get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if doc.get("issuer") != self.issuer:
                raise InvalidToken(f"the provider's discovery document names issuer {doc.get('issuer')!r}")
            self._jwks_url = str(doc["jwks_uri"])
        return self._jwks_url

    def _refresh(self) -> None:
        keys: dict[str, jwt.PyJWK] = {}
        for raw in self._get(self.jwks_url()).get("keys", []):
            if raw.get("use", "sig") != "sig" or "kid" not in raw:
                continue
            try:
                keys[raw["kid"]] = jwt.PyJWK(raw)
            except jwt.PyJWTError:
                continue  # a key type this library cannot use: skipped, the others still serve
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    def key(self, kid: str) -> jwt.PyJWK:
        """The provider's key with this id (refreshing the cached JWKS once if it is unknown)."""
        with self._lock:
            if kid not in self._keys and (
                self._fetched_at is None or time.monotonic() - self._fetched_at >= self._min_refresh
            ):
                try:
                    self._refresh()
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    why = type(exc).__name__
                    raise InvalidToken(f"the provider's keys could not be read ({why})") from exc
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken("signed with a key the provider does not publish")
        return found

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, if it is to be trusted; else InvalidToken saying why."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("the token names no key (kid)")
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        key = self.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name] if key.algorithm_name in ALGORITHMS else ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"not issued for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"not issued by {self.issuer}") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token ({type(exc).__name__})") from None
        now = self.clock.now().timestamp()
        if not isinstance(claims["exp"], int | float) or now > claims["exp"] + LEEWAY:
            raise InvalidToken("expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + LEEWAY < nbf:
            raise InvalidToken("not valid yet")
        return claims

    @staticmethod
    def expires_at(claims: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(float(claims["exp"]), UTC)


def _get_json(url: str) -> Any:
    r = httpx.get(url, timeout=5.0, follow_redirects=False)
    r.raise_for_status()
    return r.json()


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: a JWT, never a development or hashed credential."""
    return token.count(".") == 2


def configured() -> tuple[str, str, str]:
    """(issuer, audience, jwks_url) from the environment; issuer empty when OIDC is off."""
    return (
        os.environ.get("LINDUNGI_OIDC_ISSUER", "").strip(),
        os.environ.get("LINDUNGI_OIDC_AUDIENCE", "").strip() or DEFAULT_AUDIENCE,
        os.environ.get("LINDUNGI_OIDC_JWKS_URL", "").strip(),
    )


def load_verifier() -> Verifier | None:
    """The process's verifier (one per configuration, keys cached), or None without an issuer."""
    issuer, audience, jwks_url = configured()
    return _verifier(issuer, audience, jwks_url) if issuer else None


@lru_cache(maxsize=4)
def _verifier(issuer: str, audience: str, jwks_url: str) -> Verifier:
    return Verifier(issuer, audience, jwks_url=jwks_url)


def reset() -> None:
    """Forget the cached verifiers (tests that change the configuration)."""
    _verifier.cache_clear()
