"""Who is asking: bearer credentials of missions and desk users, checked per endpoint.

Two kinds of bearer credential map onto the same Principal, so every role and jurisdiction check
is the same whichever was used:
- hashed credentials: long random secrets, of which a SHA-256 is what we store and compare (in
  constant time). The directory is data: `shared/data/missions.yaml` and `users.yaml`, or the
  same two files in LINDUNGI_CREDENTIALS_DIR (which also says which missions exist and the
  countries each covers, whichever credential a mission uses);
- JWT access tokens of the OpenID provider, when LINDUNGI_OIDC_ISSUER is set (shared/oidc.py):
  roles, provinces and mission from their claims. In production with an issuer configured they
  are the only credential accepted (`static_credentials_accepted`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import yaml
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared import oidc

DATA = Path(__file__).parent / "data"

Role = Literal[
    "mission",
    "officer",
    "supervisor",
    "administrator",
    "auditor",
    "debarkation",
    "region",
    "registry_operator",
    "system",
]
ROLES: frozenset[str] = frozenset(get_args(Role))


class Mission(BaseModel):
    """An embassy, consulate or KDEI, and the countries it covers."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    kind: str
    city: str
    countries: frozenset[str]


class Principal(BaseModel):
    """The authenticated caller of a request."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    roles: frozenset[str]
    countries: frozenset[str] = Field(default_factory=frozenset)  # a mission's jurisdiction
    provinces: frozenset[str] = Field(default_factory=frozenset)  # a region user's provinces

    @property
    def is_mission(self) -> bool:
        return "mission" in self.roles

    def may_see_country(self, country: str) -> bool:
        """Desk users see every country; a mission only its jurisdiction."""
        return not self.is_mission or country.upper() in self.countries


class Directory:
    """Missions and users with their hashed credentials."""

    def __init__(self, folder: Path) -> None:
        missions = yaml.safe_load((folder / "missions.yaml").read_text())["missions"]
        users = yaml.safe_load((folder / "users.yaml").read_text())["users"]
        self.missions = {
            m["id"]: Mission(**{k: v for k, v in m.items() if k != "token_sha256"}) for m in missions
        }
        self._by_hash: dict[str, Principal] = {}
        for m in missions:
            self._by_hash[m["token_sha256"]] = Principal(
                id=m["id"], name=m["name"], roles=frozenset({"mission"}), countries=frozenset(m["countries"])
            )
        for u in users:
            self._by_hash[u["token_sha256"]] = Principal(
                id=u["id"],
                name=u["name"],
                roles=frozenset(u["roles"]),
                provinces=frozenset(u.get("provinces", ())),
            )

    def authenticate(self, token: str) -> Principal | None:
        """The principal a credential belongs to, or None."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        for stored, principal in self._by_hash.items():
            if hmac.compare_digest(stored, digest):
                return principal
        return None

    def missions_for(self, country: str) -> list[Mission]:
        return [m for m in self.missions.values() if country.upper() in m.countries]


@lru_cache(maxsize=4)
def load_directory(folder: str | None = None) -> Directory:
    """The credential directory (cached per folder)."""
    return Directory(Path(folder or os.environ.get("LINDUNGI_CREDENTIALS_DIR") or DATA))


def _entries(folder: Path) -> list[dict[str, str]]:
    """(id, token_sha256) of every mission and user of a credential directory."""
    missions = yaml.safe_load((folder / "missions.yaml").read_text())["missions"]
    users = yaml.safe_load((folder / "users.yaml").read_text())["users"]
    return [{"id": e["id"], "token_sha256": e["token_sha256"]} for e in [*missions, *users]]


def credential_problems(folder: str) -> list[str]:
    """Why a credential directory may not serve in production (empty when it may).

    Refused: no directory (the development one would serve), the development directory itself,
    one that cannot be read, and one where any entry accepts a published `dev-<id>` credential.
    """
    setting = "LINDUNGI_CREDENTIALS_DIR"
    if not folder:
        return [f"{setting} is not set: the development credentials (dev-<id>, shared/data) would sign in"]
    path = Path(folder).expanduser().resolve()
    if path == DATA.resolve():
        return [f"{setting} is the development directory shared/data (dev-<id> credentials)"]
    try:
        entries = _entries(path)
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        return [f"{setting}: cannot read missions.yaml and users.yaml in {path} ({type(exc).__name__})"]
    ids = {e["id"] for e in entries} | {e["id"] for e in _entries(DATA)}
    published = {hashlib.sha256(dev_token(i).encode()).hexdigest() for i in ids}
    weak = sorted(e["id"] for e in entries if e["token_sha256"] in published)
    if weak:
        shown = ", ".join(weak[:5]) + (f" and {len(weak) - 5} more" if len(weak) > 5 else "")
        return [f"{setting}: {path} accepts the development credential of {shown}"]
    return []


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def principal_from_claims(claims: dict[str, object], directory: Directory) -> Principal:
    """The caller an OpenID provider's verified token describes (InvalidToken if it cannot be).

    A mission's token names the mission (`lindungi_mission`); its jurisdiction is the mission
    directory's, so a provider misconfiguration cannot widen it. A user's token carries
    `lindungi_roles` (unknown roles are ignored) and, for region users, `lindungi_provinces`.
    """
    mission_id = claims.get("lindungi_mission")
    if mission_id is not None:
        mission = directory.missions.get(mission_id) if isinstance(mission_id, str) else None
        if mission is None:
            raise oidc.InvalidToken("the token names a mission this service does not know")
        return Principal(
            id=mission.id, name=mission.name, roles=frozenset({"mission"}), countries=mission.countries
        )
    roles = frozenset(_strings(claims.get("lindungi_roles"))) & ROLES
    if "mission" in roles:
        raise oidc.InvalidToken("the mission role without lindungi_mission")
    sub = str(claims["sub"])
    name = claims.get("name")
    return Principal(
        id=sub,
        name=name if isinstance(name, str) and name.strip() else sub,
        roles=roles,
        provinces=frozenset(_strings(claims.get("lindungi_provinces"))),
    )


def static_credentials_accepted() -> bool:
    """Hashed credentials serve unless this is production with an OpenID provider configured
    (then every caller, machine clients of missions included, presents a provider's token)."""
    production = os.environ.get("LINDUNGI_ENV", "development").strip() == "production"
    return not (production and oidc.configured()[0])


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        401,
        detail=[{"field": "authorization", "reason": reason}],
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate(token: str) -> Principal:
    """The principal a bearer credential (provider JWT or hashed credential) belongs to, or 401."""
    verifier = oidc.load_verifier()
    if verifier is not None and oidc.looks_like_jwt(token):
        try:
            return principal_from_claims(verifier.claims(token), load_directory())
        except oidc.InvalidToken as exc:
            raise _unauthorized(f"token refused: {exc}") from None
        except oidc.ProviderUnavailable as exc:
            raise HTTPException(
                503,
                detail=[{"field": "authorization", "reason": str(exc)}],
                headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
            ) from None
    if not static_credentials_accepted():
        raise _unauthorized("a token of the OpenID provider is required")
    principal = load_directory().authenticate(token)
    if principal is None:
        raise _unauthorized("unknown credential")
    return principal


# The security scheme of every protected endpoint: OpenAPI names it (and /docs can send it); our
# own 401 (its body and WWW-Authenticate) answers a missing credential, not FastAPI's 403.
bearer = HTTPBearer(auto_error=False, description="A credential of the directory or a provider's token.")


async def current_principal(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """FastAPI dependency: the caller, or 401.

    On the event loop (a hashed credential is a digest and a dictionary's walk), except a
    provider's token: its verifier may fetch the provider's keys, a blocking read, in a thread.
    """
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise _unauthorized("a bearer credential is required")
    if oidc.looks_like_jwt(token) and oidc.load_verifier() is not None:
        return await run_in_threadpool(authenticate, token)
    return authenticate(token)


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: the caller, if they hold one of the roles; else 403 naming them."""

    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.roles & set(roles):
            raise HTTPException(
                403,
                detail=[
                    {"field": "authorization", "reason": f"requires one of the roles: {', '.join(roles)}"}
                ],
            )
        return principal

    return check


def dev_token(principal_id: str) -> str:
    """The development credential of a directory entry (tests and `make run` only)."""
    return f"dev-{principal_id}"
