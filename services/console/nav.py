"""Which pages and buttons a role may use (plain Python, no I/O). The services still check every call."""

from __future__ import annotations

from dataclasses import dataclass

from services.console.i18n import N_


@dataclass(frozen=True)
class Page:
    key: str
    path: str
    title: str  # a catalog message id
    roles: frozenset[str]


DESK_READ = frozenset({"officer", "supervisor", "administrator", "auditor"})
DESK_WORK = frozenset({"officer", "supervisor"})
SUPERVISION = frozenset({"supervisor", "administrator", "auditor"})
RULE_EDITORS = frozenset({"supervisor", "administrator"})
REGISTRY_READ = frozenset({"registry_operator", "administrator", "officer", "supervisor", "auditor"})
REGISTRY_WRITE = frozenset({"registry_operator", "administrator"})
REPATRIATION_READ = frozenset(
    {"officer", "supervisor", "mission", "debarkation", "region", "auditor", "administrator"}
)
# Who may act on a repatriation's steps (the service decides which steps: owner, jurisdiction).
REPATRIATION_ACT = frozenset({"officer", "supervisor", "mission", "debarkation", "region"})

PAGES: list[Page] = [
    Page("mission", "/mission", N_("Mission portal"), frozenset({"mission"})),
    Page("desk", "/desk", N_("Desk"), DESK_READ),
    Page("mine", "/desk/mine", N_("My cases"), DESK_WORK),
    Page("notifications", "/desk/notifications", N_("Notifications"), DESK_READ),
    Page("supervision", "/supervision", N_("Supervision"), SUPERVISION),
    Page("repatriation", "/repatriations", N_("Repatriation board"), REPATRIATION_READ - {"region"}),
    Page("province", "/province", N_("Province office"), frozenset({"region"})),
    Page("registry", "/registry", N_("Registry"), REGISTRY_READ),
]
BY_KEY = {p.key: p for p in PAGES}


def pages_for(roles: frozenset[str]) -> list[Page]:
    """The pages a user with these roles may use, in navigation order."""
    return [p for p in PAGES if p.roles & roles]


def may(roles: frozenset[str], allowed: frozenset[str]) -> bool:
    return bool(roles & allowed)


def home_of(roles: frozenset[str]) -> str:
    """Where a user lands after signing in."""
    pages = pages_for(roles)
    return pages[0].path if pages else "/"
