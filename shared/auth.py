"""Who is asking: bearer credentials of missions and desk users, stored hashed, checked per endpoint.

Credentials are long random secrets, so a SHA-256 of each is what we store and compare
(in constant time). The directory is data: `shared/data/missions.yaml` and `users.yaml`,
or the same two files in LINDUNGI_CREDENTIALS_DIR.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

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


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401,
            detail=[{"field": "authorization", "reason": "a bearer credential is required"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = load_directory().authenticate(token.strip())
    if principal is None:
        raise HTTPException(
            401,
            detail=[{"field": "authorization", "reason": "unknown credential"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require(*roles: str) -> Callable[..., Principal]:
    """FastAPI dependency: the caller, if they hold one of the roles; else 403 naming them."""

    def check(principal: Principal = Depends(current_principal)) -> Principal:
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
