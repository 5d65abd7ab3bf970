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
from dataclasses import dataclass, field
from typing import Protocol

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

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of the roles."""
        return bool(self.roles & set(roles))


class SignIn(Protocol):
    """A way to sign in. Development credentials today; an OIDC provider later fits here.

    An OIDC implementation redirects to the provider, exchanges the code for tokens and returns
    a Session whose credential is the access token the services then verify.
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

    def seal(self, s: Session) -> str:
        body = {
            "u": s.user_id,
            "n": s.name,
            "r": sorted(s.roles),
            "c": s.credential,
            "k": sorted(s.countries),
            "p": sorted(s.provinces),
        }
        return self._fernet.encrypt(json.dumps(body).encode()).decode()

    def open(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            body = json.loads(self._fernet.decrypt(value.encode(), ttl=self.max_age))
        except (InvalidToken, ValueError):
            return None
        return Session(
            user_id=body["u"],
            name=body["n"],
            roles=frozenset(body["r"]),
            credential=body["c"],
            countries=frozenset(body["k"]),
            provinces=frozenset(body["p"]),
        )
