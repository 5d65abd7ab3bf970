"""Who is signed in: a sealed session cookie, and the sign-in methods behind one seam.

The cookie carries the user's principal and the bearer credential the console forwards to the
services. It is encrypted and authenticated (Fernet: AES-CBC with HMAC-SHA256, with its issue
time), keyed from the session secret, HttpOnly and SameSite=Lax: the browser's scripts never
read it, other sites cannot send it with a form, and nobody can read or forge it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken

from shared.auth import Directory, load_directory

COOKIE = "lindungi_session"


@dataclass(frozen=True)
class Session:
    """The signed-in user: who, with which roles and reach, and the credential the services accept."""

    user_id: str
    name: str
    roles: frozenset[str]
    credential: str
    countries: frozenset[str] = field(default_factory=frozenset)
    provinces: frozenset[str] = field(default_factory=frozenset)
    # When the credential stops serving (an OpenID provider's access token expires): the session
    # ends then too. None: the session cookie's own lifetime only.
    expires_at: float | None = None

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of the roles."""
        return bool(self.roles & set(roles))


class SignIn(Protocol):
    """A way to sign in with a user id and a credential typed into the console's form.

    The OpenID provider's sign-in (services/console/oidc.py) redirects to the provider instead,
    exchanges the code for tokens and gives a Session whose credential is the access token the
    services then verify.
    """

    def authenticate(self, user_id: str, credential: str) -> Session | None: ...


class DirectorySignIn:
    """Sign-in with a credential of the directory (shared/data/*.yaml; `dev-<id>` in development)."""

    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory or load_directory()

    def authenticate(self, user_id: str, credential: str) -> Session | None:
        """The session of a credential that belongs to user_id, or None."""
        principal = self.directory.authenticate(credential.strip())
        if principal is None or principal.id != user_id.strip():
            return None
        return Session(
            user_id=principal.id,
            name=principal.name,
            roles=frozenset(principal.roles),
            credential=credential.strip(),
            countries=frozenset(principal.countries),
            provinces=frozenset(principal.provinces),
        )


class Sealer:
    """Seals a session into a cookie value and opens it again (None when forged, altered or expired)."""

    def __init__(self, secret: str, *, max_age_seconds: int) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"lindungi-console:{secret}".encode()).digest())
        self._fernet = Fernet(key)
        self.max_age = max_age_seconds

    def seal_json(self, body: dict[str, Any]) -> str:
        """Any small JSON document, sealed the same way (e.g. a sign-in's state, nonce and verifier)."""
        return self._fernet.encrypt(json.dumps(body).encode()).decode()

    def open_json(self, value: str | None, *, max_age: int) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            body = json.loads(self._fernet.decrypt(value.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def seal(self, s: Session) -> str:
        body = {
            "u": s.user_id,
            "n": s.name,
            "r": sorted(s.roles),
            "c": s.credential,
            "k": sorted(s.countries),
            "p": sorted(s.provinces),
            "x": s.expires_at,
        }
        return self.seal_json(body)

    def open(self, value: str | None) -> Session | None:
        body = self.open_json(value, max_age=self.max_age)
        if body is None:
            return None
        if body.get("x") is not None and time.time() >= float(body["x"]):
            return None  # the credential inside has expired: sign in again
        return Session(
            user_id=body["u"],
            name=body["n"],
            roles=frozenset(body["r"]),
            credential=body["c"],
            countries=frozenset(body["k"]),
            provinces=frozenset(body["p"]),
            expires_at=body.get("x"),
        )
