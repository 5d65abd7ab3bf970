"""Tokens from the real OpenID provider (deploy/local/oidc): client credentials, and a user's
sign-in through the authorization code flow with PKCE, its login form filled in over HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

CONSOLE_CLIENT = ("lindungi-console", "dev-lindungi-console")


def client_token(issuer: str, client_id: str, secret: str | None = None) -> str:
    """An access token for a machine client (a mission's system) by the client-credentials grant."""
    r = httpx.post(
        issuer.rstrip("/") + "/oauth/token",
        auth=(client_id, secret or f"dev-{client_id}"),
        data={"grant_type": "client_credentials"},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def fill_login(client: httpx.Client, login_url: str, user: str, password: str) -> httpx.Response:
    """Post the provider's login form (from the login page it redirected to); the answer redirects."""
    auth_request = parse_qs(urlparse(login_url).query)["authRequestID"][0]
    page = client.get(login_url)
    page.raise_for_status()
    assert 'name="password"' in page.text, page.text[:500]
    form = {"id": auth_request, "username": user, "password": password}
    return client.post(login_url.split("?")[0], data=form)


def user_tokens(issuer: str, user: str, password: str | None = None) -> dict[str, str]:
    """A user's tokens through the console's client: authorize, log in, code, token (PKCE)."""
    redirect = "http://127.0.0.1:1/auth/oidc/callback"
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    base = issuer.rstrip("/")
    with httpx.Client(follow_redirects=False) as c:
        query = {
            "client_id": CONSOLE_CLIENT[0],
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "openid profile",
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        r = c.get(f"{base}/auth?{urlencode(query)}")
        assert r.status_code == 302, r.text
        r = fill_login(c, str(httpx.URL(base).join(r.headers["location"])), user, password or f"dev-{user}")
        while r.status_code in (302, 303) and not r.headers["location"].startswith(redirect):
            r = c.get(httpx.URL(base).join(r.headers["location"]))
        assert r.status_code in (302, 303), r.text[:500]
        answer = parse_qs(urlparse(r.headers["location"]).query)
        assert answer["state"] == [state]
        token = c.post(
            f"{base}/oauth/token",
            auth=CONSOLE_CLIENT,
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
        )
        token.raise_for_status()
        return dict(token.json())
