"""Sign-in through the OpenID provider: authorization code flow with PKCE, state and nonce.

`start` sends the browser to the provider with a fresh state, nonce and PKCE verifier, kept in a
short-lived sealed cookie (never in a server-side store, so any console replica can finish the
sign-in). `finish` checks the state, exchanges the code (client secret and verifier) for tokens,
verifies the ID token (signature by the provider's keys, issuer, audience = the console's client
id, nonce) and the access token the way the services do (shared/oidc.py), and gives the Session:
roles, provinces and mission from the access token's claims, the access token as the credential
the console forwards to the services, and its expiry as the session's end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from services.console.session import Session
from shared import oidc
from shared.auth import load_directory, principal_from_claims

COOKIE = "lindungi_oidc"
MAX_AGE = 600  # seconds a sign-in may take at the provider


class SignInFailed(Exception):
    """The provider's answer cannot sign anyone in; the message says why (shown to the user)."""


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and what to remember until it comes back (sealed in COOKIE)."""

    url: str
    remember: dict[str, str]


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcSignIn:
    """The console's client at the OpenID provider."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str = oidc.DEFAULT_AUDIENCE,
        jwks_url: str = "",
        scope: str = "openid profile",
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.access = oidc.Verifier(issuer, audience, jwks_url=jwks_url)
        self.id_tokens = oidc.Verifier(issuer, client_id, jwks_url=jwks_url)
        self._discovery: dict[str, Any] | None = None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                answer.raise_for_status()
                doc = answer.json()
            if doc.get("issuer") != self.issuer:
                raise SignInFailed(f"the provider's discovery document names issuer {doc.get('issuer')!r}")
            self._discovery = doc
        return self._discovery

    async def start(self, redirect_uri: str, next_path: str) -> Started:
        """The provider's authorization URL for a new sign-in, and what to remember."""
        doc = await self.discovery()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": self.scope,
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        remember = {"s": state, "n": nonce, "v": verifier, "r": redirect_uri, "next": next_path}
        return Started(f"{doc['authorization_endpoint']}?{urlencode(query)}", remember)

    async def finish(self, remembered: dict[str, Any] | None, *, code: str, state: str) -> Session:
        """The session of a completed sign-in (SignInFailed when anything does not check out)."""
        if not remembered:
            raise SignInFailed("the sign-in took too long or was not started here; start again")
        if not hmac.compare_digest(str(remembered.get("s", "")), state):
            raise SignInFailed("state does not match this browser's sign-in")
        doc = await self.discovery()
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(
                doc["token_endpoint"],
                auth=(self.client_id, self._secret),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": remembered["r"],
                    "code_verifier": remembered["v"],
                },
            )
        if answer.status_code != 200:
            raise SignInFailed(f"the provider refused the code ({answer.status_code})")
        tokens = answer.json()
        try:
            id_claims = await asyncio.to_thread(self.id_tokens.claims, str(tokens.get("id_token", "")))
            access_claims = await asyncio.to_thread(self.access.claims, str(tokens.get("access_token", "")))
            if not hmac.compare_digest(str(id_claims.get("nonce", "")), str(remembered["n"])):
                raise oidc.InvalidToken("the ID token's nonce is not this sign-in's")
            if id_claims["sub"] != access_claims["sub"]:
                raise oidc.InvalidToken("the ID token and the access token name different users")
            principal = principal_from_claims(access_claims, load_directory())
        except oidc.InvalidToken as exc:
            raise SignInFailed(f"the provider's tokens were refused: {exc}") from None
        except oidc.ProviderUnavailable as exc:
            raise SignInFailed(f"the provider cannot be reached to check its tokens: {exc}") from None
        return Session(
            user_id=principal.id,
            name=principal.name,
            roles=frozenset(principal.roles),
            credential=str(tokens["access_token"]),
            countries=frozenset(principal.countries),
            provinces=frozenset(principal.provinces),
            expires_at=float(access_claims["exp"]),
        )
