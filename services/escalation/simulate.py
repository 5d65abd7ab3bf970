"""Dry run, the pure part: replay events through a rule set with a simulated clock, acting on nothing.

The simulated clock follows the events' times: before each event, every chain slot due by
then fires at its due time (a perfect timer), then the event is applied exactly as the live
engine applies it (evaluation.evaluate, chains.ends_chain, the same schedules and firing ids).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.escalation import actions, chains, counting, evaluation, ruleset


@dataclass
class Simulator:
    """One rule set's in-memory engine."""

    rules: ruleset.RuleSet
    version: int = 0
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    decided: set[str] = field(default_factory=set)
    counters: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)  # (counter key, member) counted by a firing
    windows: dict[str, int] = field(default_factory=dict)  # per count head: its last firing number
    fired: list[actions.Firing] = field(default_factory=list)

    def feed(self, ev: ruleset.Incoming) -> None:
        """Apply one event at its own time."""
        self.advance_to(ev.time)
        keys = set(evaluation.subject_keys(ev.data))
        for cid, chain in list(self.chains.items()):
            if chain["subject"] in keys and chains.ends_chain(chain["until"], ev):
                self._cancel(cid)
        effects = evaluation.evaluate(self.rules, self.version, ev)
        for firing in effects.firings:
            self._record(actions.now_decision_id(firing), firing)
        for start in effects.starts:
            if start.id in self.decided:
                continue
            self.decided.add(start.id)
            for cid, other in list(self.chains.items()):
                if other["rule_id"] == start.rule_id and other["subject"] == start.subject:
                    self._cancel(cid)
            self.chains[start.id] = chains.chain_doc(start, created_at=start.started_at)
        for hit in effects.counts:
            bucket = self.counters.setdefault(hit.counter_id, [])
            if (hit.member, hit.at) not in bucket:
                bucket.append((hit.member, hit.at))
            seen = [m for b in (hit.counter_id, *hit.neighbours) for m in self.counters.get(b, [])]
            counted = {m for m, _ in seen if f"{hit.rule_id}|{hit.key}|{m}" in self.consumed}
            window = counting.pick_window(seen, counted, at_least=hit.at_least, within=hit.within)
            if window is not None:
                members = [m for m, _ in window]
                seq = self.windows[hit.head_id] = self.windows.get(hit.head_id, 0) + 1
                self._record(hit.window_id(seq), counting.count_firing(hit, window, ev.time))
                self.consumed.update(f"{hit.rule_id}|{hit.key}|{m}" for m in members)

    def advance_to(self, until: datetime) -> None:
        """Fire, in due order, every slot due by `until`."""
        while True:
            due = [c for c in self.chains.values() if c["due_at"] <= until]
            if not due:
                return
            chain = min(due, key=lambda c: c["due_at"])
            slots = chains.schedule(chain["stages"])
            slot = slots[chain["slot"]]
            firing = chains.slot_firing(chain, slot, chain["due_at"])
            self._record(actions.slot_decision_id(chain["_id"], slot.label), firing)
            if chain["slot"] + 1 < len(slots):
                chain["slot"] += 1
                chain["due_at"] = chain["started_at"] + timedelta(seconds=slots[chain["slot"]].offset)
            else:
                del self.chains[chain["_id"]]

    def _cancel(self, cid: str) -> None:
        del self.chains[cid]

    def _record(self, firing_id: str, firing: actions.Firing) -> None:
        if firing_id not in self.decided:
            self.decided.add(firing_id)
            self.fired.append(firing)


def run(
    rules: ruleset.RuleSet, events: Iterable[ruleset.Incoming], until: datetime | None = None
) -> list[actions.Firing]:
    """Everything a rule set would have fired over an event stream (in time order)."""
    sim = Simulator(rules)
    last: datetime | None = None
    for ev in sorted(events, key=lambda e: e.time):
        sim.feed(ev)
        last = ev.time
    end = until or last
    if end is not None:
        sim.advance_to(end)
    return sim.fired


def _key(f: actions.Firing) -> tuple[str, str, str]:
    return (f.rule_id, f.stage, f.subject or "")


def compare(candidate: list[actions.Firing], live: list[actions.Firing]) -> dict[str, Any]:
    """What the candidate rules would fire that the live rules would not, and the reverse."""
    cand = {_key(f): f.summary() for f in candidate}
    base = {_key(f): f.summary() for f in live}
    only_candidate = [cand[k] for k in sorted(cand.keys() - base.keys())]
    only_live = [base[k] for k in sorted(base.keys() - cand.keys())]
    changed = [
        {"candidate": cand[k], "live": base[k]}
        for k in sorted(cand.keys() & base.keys())
        if (cand[k]["actions"], cand[k]["at"]) != (base[k]["actions"], base[k]["at"])
    ]
    return {
        "candidate_fired": len(cand),
        "live_fired": len(base),
        "same": len(cand.keys() & base.keys()) - len(changed),
        "only_candidate": only_candidate,
        "only_live": only_live,
        "changed": changed,
        "by_rule": _by_rule(candidate, live),
    }


def _by_rule(candidate: list[actions.Firing], live: list[actions.Firing]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, firings in (("candidate", candidate), ("live", live)):
        for firing in firings:
            out.setdefault(firing.rule_id, {"candidate": 0, "live": 0})[name] += 1
    return dict(sorted(out.items()))
