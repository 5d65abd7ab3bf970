"""escalation's counters rebuilt from the topics (`lindungi replay escalation`, shared/replay.py).

A counter bucket holds two things: its members, and which of them a firing has counted.

- Members come only from topics. Every consumed event is evaluated by the live engine's own
  `evaluation.evaluate`, under the rule set that was in force at the event's time (rule sets are
  stored as versions with their load time: `evaluation.in_force`), and each count hit lands through
  `store.count_member`, as live. A rule set loaded later does not recount older events.
- What a firing counted is a decision, not an event: the `decided` records stay (a rebuild
  never fires again and never undoes a firing), and each window decision's members are marked
  counted again (`store.mark_counted`) in the bucket of their earliest hit, where the engine
  marks them. Taking them from the decisions, not from re-running the windows, keeps the
  firings the live engine chose even where events came in another order than the replay's.

Nothing is fired. A window the rebuilt members make complete that no decision counted (a count
the live counters had lost) is reported as owed: the engine fires it at its key's next counted
event, as it would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.escalation import counting, evaluation, ruleset, store
from shared.clock import utc
from shared.envelope import Envelope
from shared.mongo import Doc
from shared.replay import Projector


@dataclass
class Recount:
    """One rebuild's counting: the rule set history, and the earliest hit of each member."""

    live: AsyncDatabase[Doc]  # where the rule sets and the decisions are (never redirected)
    rulesets: dict[int, ruleset.RuleSet]
    loaded: list[tuple[int, datetime]]
    first: dict[tuple[str, str, str], counting.CountHit] = field(default_factory=dict)
    counted: set[tuple[str, str, str]] = field(default_factory=set)  # members of kept firings, last read

    @classmethod
    async def start(cls, live: AsyncDatabase[Doc]) -> Projector:
        """A projector over the rule sets stored now (raises if none is stored)."""
        docs = await store.every_ruleset(live)
        rulesets = {int(d["_id"]): ruleset.load_rules(d["yaml"]) for d in docs}
        loaded = [(int(d["_id"]), utc(d["loaded_at"])) for d in docs]
        recount = cls(live, rulesets, loaded)
        return Projector(recount.project, recount.settle)

    async def project(self, db: AsyncDatabase[Doc], env: Envelope, _event: Any) -> None:
        """Count one event as the rules in force at its time count it."""
        ev = ruleset.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)
        if ev is None or not self.loaded:
            return
        version = evaluation.in_force(self.loaded, ev.time)
        for hit in evaluation.evaluate(self.rulesets[version], version, ev).counts:
            await store.count_member(db, hit.counter_id, hit.member_doc, hit.counter_doc)
            member = (hit.rule_id, hit.key, hit.member)
            seen = self.first.get(member)
            if seen is None or hit.at < seen.at:
                self.first[member] = hit
            if member in self.counted:  # a kept firing counted it: marked at once, not at the next settle
                await store.mark_counted(db, {self.first[member].counter_id: [hit.member]})

    async def settle(self, db: AsyncDatabase[Doc]) -> dict[str, int]:
        """Mark what the kept decisions counted; say how many marks, and how many windows are owed."""
        marks: dict[str, list[str]] = {}
        counted: set[tuple[str, str, str]] = set()
        self.counted = set()
        for window in await store.window_decisions(self.live):
            for member in window.get("members") or []:
                self.counted.add((window["rule_id"], window["key"], member))
                hit = self.first.get((window["rule_id"], window["key"], member))
                if hit is not None:  # a member not replayed yet is marked when the catch-up meets it
                    marks.setdefault(hit.counter_id, []).append(member)
                    counted.add((window["rule_id"], window["key"], member))
        await store.mark_counted(db, marks)
        groups: dict[tuple[str, str, int, int], list[tuple[str, datetime]]] = {}
        for (rule_id, key, member), hit in self.first.items():
            if (rule_id, key, member) not in counted:
                groups.setdefault((rule_id, key, hit.within, hit.at_least), []).append((member, hit.at))
        owed = sum(
            1
            for (_, _, within, at_least), members in groups.items()
            if counting.pick_window(members, set(), at_least=at_least, within=within) is not None
        )
        return {"members counted by kept firings": len(counted), "windows owed a firing": owed}
