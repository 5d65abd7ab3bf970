"""The live side of the rules: events in, chains (durable timers), counters and decisions out.

Exactly once, without conditional updates: every decision is the insert of a record in
`decided` whose `_id` says what is decided (a chain slot, a trigger, a counter window); the
database refuses a second insert of it (another replica, a redelivery, a stale timer). The
decision's events then go into the outbox (`emissions`, deleted once published so the relay's
scans stay small) and the decision is marked emitted; a decider that died in between is
covered by whoever next meets the decision (same envelope ids). Cancelling a chain decides its
remaining slots as cancelled, so a timer that loses the race to a cancel can never fire.

One module, although over 400 lines: it is one class, one replica's engine, and its parts
(events, counts, timers, repair) all decide through the same fence (the unique `_id` of a record
in `decided`: `_record` one at a time, `_fire_group` for a timer pass's group) and share the
replica's state (the rules in force, metrics, counters the tests read). The pure parts are
elsewhere (ruleset, evaluation, actions, chains, counting); the storage in store.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import Gauge, Histogram

from services.escalation import (
    actions,
    chains,
    counting,
    evaluation,
    notification_store,
    notifier,
    ruleset,
    store,
)
from shared.clock import utc
from shared.envelope import Envelope
from shared.events.escalation import EscalationWithdrawn
from shared.mongo import Doc
from shared.service import Runtime

log = logging.getLogger("lindungi.escalation")

EMIT_EVERY = 20  # decisions per outbox document in a timer pass: small, so the relay's lease holds
LINK_TRIES = 10  # a subject whose latest chain moves this often while a trigger starts: the handler retries

DEFAULT_RULES = Path(__file__).parent / "rules" / "default.yaml"


class Escalation:
    """One replica's rule engine: the rules in force, event handling, timer firing."""

    def __init__(
        self,
        rt: Runtime,
        *,
        poll_seconds: float = 0.5,
        batch: int = 200,
        rules_refresh_seconds: float = 2.0,
        default_rules: Path = DEFAULT_RULES,
    ) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.rules_refresh_seconds = rules_refresh_seconds
        self.default_rules = default_rules
        self.rules: ruleset.RuleSet = ruleset.RuleSet(rules=[])
        self.version = 0
        self.fired = 0  # slots this replica fired (tests and bench count them)
        self.passes = 0  # timer-loop passes finished (tests wait on it instead of sleeping)
        self.lateness: list[float] = []  # seconds from due to fired, on the injected clock
        self.keep_lateness = False
        # Far longer than a decider needs between deciding and emitting (EMIT_EVERY decisions):
        # a repair inside it would publish twice.
        self.emit_grace_seconds = rt.settings.escalation_emit_grace_seconds
        self.purge_seconds = 5.0
        self.repair_seconds = rt.settings.escalation_repair_seconds
        registry = rt.metrics.registry
        self.pending = Gauge("lindungi_timers_pending", "Live chains waiting on a timer.", registry=registry)
        self.next_due = Gauge(
            "lindungi_timers_next_due_seconds",
            "Seconds until the earliest timer is due (negative: overdue; 0 when none waits).",
            registry=registry,
        )
        self.lateness_seconds = Histogram(
            "lindungi_timer_lateness_seconds",
            "From a slot's due time to its firing, on the service clock.",
            registry=registry,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
        )
        rt.metrics.on_scrape("timers", self._timer_gauges)

    async def _timer_gauges(self) -> None:
        pending, first = await store.pending_timers(self.rt.db)
        self.pending.set(pending)
        self.next_due.set((utc(first) - self.rt.clock.now()).total_seconds() if first is not None else 0.0)

    # ------------------------------------------------------------ rules

    async def startup(self) -> None:
        """Indexes; the default rule set as version 1 if none is stored; load what is in force."""
        await store.ensure_indexes(self.rt.db)
        text = self.default_rules.read_text()
        ruleset.load_rules(text)  # a broken default file stops the service at start, loudly
        await store.add_ruleset(
            self.rt.db,
            {"yaml": text, "loaded_at": self.rt.clock.now(), "loaded_by": "default", "note": "default rules"},
            first_only=True,
        )
        await self.reload()

    async def reload(self) -> None:
        """Adopt the newest stored rule set if it changed (every replica converges on it)."""
        doc = await store.latest_ruleset(self.rt.db)
        if doc is None or doc["_id"] == self.version:
            return
        self.rules = ruleset.load_rules(doc["yaml"])
        self.version = int(doc["_id"])
        log.info("rule set %d in force (%d rules)", self.version, len(self.rules.rules))

    async def load(self, text: str, *, by: str, note: str | None) -> int:
        """Validate and store a new rule set (raises InvalidRules; nothing stored then)."""
        ruleset.load_rules(text)
        version = await store.add_ruleset(
            self.rt.db, {"yaml": text, "loaded_at": self.rt.clock.now(), "loaded_by": by, "note": note}
        )
        assert version is not None
        await self.reload()
        return version

    # ------------------------------------------------------------ events

    async def handle(self, env: Envelope, _payload: Any = None) -> None:
        """Apply one consumed event: end chains it meets, then run the rules it triggers."""
        ev = ruleset.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)
        if ev is None:
            return
        subjects = await store.subject_docs(self.rt.db, evaluation.subject_keys(ev.data))
        for chain in await store.live_for_subjects(self.rt.db, subjects):
            if chains.ends_chain(chain["until"], ev):
                await self.cancel(chain, by=ev.id, state="cancelled", met_at=ev.time)
        effects = evaluation.evaluate(self.rules, self.version, ev)
        for firing in effects.firings:
            await self._record(actions.now_decision_id(firing), firing, {"kind": "now"})
        for start in effects.starts:
            # the subject documents read above: a cancel changes their live chains, never `latest`
            await self.start(start, subjects)
        for hit in effects.counts:
            await self.count(hit, at=ev.time)

    async def start(
        self, chain_start: chains.ChainStart, subjects: dict[str, Doc | None] | None = None
    ) -> bool:
        """Store a chain with its rule's stages frozen into it; supersede the rule's older chain.

        A trigger older than the one of the rule's latest chain for the subject (redelivered,
        or arriving out of order) never replaces it: its chain is recorded as superseded.
        `subjects`: subject documents the caller read (store.subject_docs), else read here.
        """
        db = self.rt.db
        if subjects is None or chain_start.subject not in subjects:
            subjects = await store.subject_docs(db, [chain_start.subject])
        # The subject is read, decided on, then linked only if the rule's latest chain is still
        # the one read: a subject's triggers may come side by side (a worker's, from two cases:
        # case events are keyed by case, and replicas hold different partitions).
        for _ in range(LINK_TRIES):
            latest_id = store.latest_of(subjects[chain_start.subject], chain_start.rule_id)
            if latest_id == chain_start.id:
                # a redelivered trigger: its chain exists (live or ended), or a crash came between
                # the link below and the insert (a dangling link, repaired now)
                if await store.get_chain(db, chain_start.id) is not None:
                    return False
                return await self._insert_chain(chain_start, previous=None)
            latest = await store.get_chain(db, latest_id) if latest_id is not None else None
            mine = chain_start.trigger_at or chain_start.started_at
            if latest is not None and utc(latest.get("trigger_at") or latest["started_at"]) > mine:
                if await store.get_chain(db, chain_start.id) is not None:
                    return False  # a redelivered trigger whose chain a newer one replaced since
                now = self.rt.clock.now()
                older = chains.chain_doc(chain_start, created_at=now)
                older.update({"state": "superseded", "closed_at": now, "closed_by": latest["trigger"]})
                await store.insert_closed(db, older)
                log.info(
                    "an older trigger of %s on %s did not replace the newer chain",
                    chain_start.rule_id,
                    chain_start.subject,
                )
                return False
            # Subject first: a crash before the insert leaves a dangling id (the redelivery
            # repairs it above), never a live chain that an ending event cannot find.
            linked = await store.link_subject(
                db, chain_start.subject, chain_start.rule_id, chain_start.id, expect=latest_id
            )
            if linked is not None:
                previous, seen = linked
                if seen and await store.get_chain(db, chain_start.id) is not None:
                    return False  # a redelivered trigger: the chain exists (live or ended)
                return await self._insert_chain(chain_start, previous)
            subjects = await store.subject_docs(db, [chain_start.subject])  # another linked: again
        raise RuntimeError(
            f"the chains of {chain_start.subject} kept changing while {chain_start.id} started"
        )

    async def _insert_chain(self, chain_start: chains.ChainStart, previous: str | None) -> bool:
        """Insert a linked chain; then the rule's previous chain for the subject is superseded."""
        db = self.rt.db
        if not await store.insert_chain(db, chains.chain_doc(chain_start, created_at=self.rt.clock.now())):
            return False
        if previous is not None:
            other = await store.live_chain(db, previous)
            if other is not None:
                await self.cancel(other, by=chain_start.trigger, state="superseded")
        return True

    async def cancel(self, chain: Doc, *, by: str, state: str, met_at: datetime | None = None) -> None:
        """End a chain: its remaining slots are claimed as cancelled, then it leaves the live set.

        When its ending event happened before stages that have fired (it came late), undo what
        can be undone of those stages and say what stands (`withdraw_late`).
        """
        slots = chains.schedule(chain["stages"])
        now = self.rt.clock.now()
        if met_at is not None:
            await self.withdraw_late(chain, by=by, met_at=met_at)
        records = [
            {
                "_id": actions.slot_decision_id(chain["_id"], sl.label),
                "kind": "slot",
                "outcome": "cancelled",
                "chain_id": chain["_id"],
                "rule_id": chain["rule_id"],
                "stage": sl.label,
                "subject": chain["subject"],
                "by": by,
                "at": now,
            }
            for sl in slots[int(chain.get("slot", 0)) :]
        ]
        await store.insert_cancellations(self.rt.db, records)
        await store.close(self.rt.db, chain, state=state, at=now, by=by)

    async def withdraw_late(self, chain: Doc, *, by: str, met_at: datetime) -> bool:
        """Stages fired after the deadline was in fact met: withdraw their undelivered notifications,
        and tell the case (EscalationWithdrawn) what was undone and what stands. Once per chain."""
        db = self.rt.db
        late = chains.late_slots({**chain, "started_at": utc(chain["started_at"])}, met_at)
        case_id = (chain.get("facts") or {}).get("case_id")
        if not late or not case_id:
            return False
        undone: list[str] = []
        stands: list[str] = []
        for sl in late:
            decided = await store.get_decision(db, actions.slot_decision_id(chain["_id"], sl.label))
            if decided is None or decided.get("outcome") != "fired":
                continue
            undone_here, stands_here, withdraw = actions.undo_plan(list(decided.get("actions") or []))
            ids = list(decided.get("action_ids") or [])
            # action_ids follow the emitted events; actions skipped (no case) have none
            gone = [ids[i] for i in withdraw if i < len(ids)]
            await notification_store.withdraw_actions(db, gone, at=met_at, by=by)
            await notifier.withdraw_pending(self.rt, gone, met_at=met_at)  # on the timeline at once
            undone += [f"{sl.label} {x}" for x in undone_here]
            stands += [f"{sl.label} {x}" for x in stands_here]
        remaining = [sl.label for sl in chains.schedule(chain["stages"])[int(chain.get("slot", 0)) :]]
        if remaining:
            undone.append(f"stages not yet fired cancelled: {', '.join(remaining)}")
        ev = EscalationWithdrawn(
            case_id=case_id,
            chain_id=chain["_id"],
            rule_id=chain["rule_id"],
            stages=[sl.label for sl in late],
            met_at=met_at,
            ended_by=by,
            undone=undone,
            not_undone=stands,
            at=self.rt.clock.now(),
        )
        decision_id = f"{chain['_id']}:withdrawn"
        entry = self.rt.outbox.entry(ev, key=case_id, id=uuid.uuid5(actions.ACTION_NS, decision_id).hex)
        doc = {
            "_id": decision_id,
            "outcome": "withdrawn",
            "chain_id": chain["_id"],
            "rule_id": chain["rule_id"],
            "stage": "withdrawn",
            "subject": chain["subject"],
            "by": by,
            "fired_at": self.rt.clock.now(),
            "undone": undone,
            "not_undone": stands,
            "events": [entry],
            "emitted": False,
            "decided_wall": time.time(),
        }
        if await store.decide(db, doc):
            await self._emit([(decision_id, [entry])])
            return True
        return False

    async def count(self, hit: counting.CountHit, *, at: datetime) -> bool:
        """Count a trigger; fire when enough uncounted members lie within a sliding window.

        The firing's record (its id names the members it counted) makes it fire once; its
        members are then marked counted in their buckets, so each counts toward one firing.
        """
        db = self.rt.db
        docs = [await store.count_member(db, hit.counter_id, hit.member_doc, hit.counter_doc)]
        docs += await store.counters_by_id(db, hit.neighbours)
        seen = [(m["id"], utc(m["at"])) for d in docs for m in d.get("members", [])]
        counted = {c for d in docs for c in d.get("counted", [])}
        # Firings of one rule and key are numbered: the decision's id is the next number, so two
        # replicas that saw different members (late, out-of-order incidents on two partitions)
        # and picked different windows still decide one firing; the loser learns the winner's
        # members (counted) and looks again under the number after.
        head = await store.count_head(db, hit.head_id)
        seq = int(head.get("seq", 0))
        counted |= {m for w in head.get("windows", []) for m in w.get("members", [])}
        for _ in range(10):
            window = counting.pick_window(seen, counted, at_least=hit.at_least, within=hit.within)
            if window is None:
                return False
            members = [m for m, _ in window]
            firing = counting.count_firing(hit, window, at)
            extra = {"kind": "window", "members": members, "key": hit.key, "seq": seq + 1}
            if await self._record(hit.window_id(seq + 1), firing, extra):
                await self._counted(hit, seq + 1, window)
                return True
            before = await store.get_decision(db, hit.window_id(seq + 1)) or {}
            theirs = list(before.get("members") or [])
            times = dict(seen)
            await self._counted(hit, seq + 1, [(m, times[m]) for m in theirs if m in times], theirs)
            counted |= set(theirs)
            seq += 1
        return False

    async def _counted(
        self,
        hit: counting.CountHit,
        seq: int,
        window: list[tuple[str, datetime]],
        members: list[str] | None = None,
    ) -> None:
        """Note a firing's members as counted: in the key's head (by number) and in their buckets."""
        await store.advance_count_head(
            self.rt.db,
            hit.head_id,
            seq,
            members if members is not None else [m for m, _ in window],
            {"rule_id": hit.rule_id, "key": hit.key},
        )
        by_bucket: dict[str, list[str]] = {}
        for m, t in window:
            by_bucket.setdefault(hit.bucket_id(counting.bucket_of(t, hit.within)), []).append(m)
        await store.mark_counted(self.rt.db, by_bucket)

    # ------------------------------------------------------------ timers

    async def fire_due(self, *, limit: int | None = None) -> int:
        """Fire every chain slot due now (several passes until none is left); return how many fired here."""
        total = 0
        while True:
            due = await store.due(self.rt.db, self.rt.clock.now(), limit or self.batch)
            if not due:
                return total
            random.shuffle(due)  # replicas scanning the same due set rarely collide
            progressed = fired_now = 0
            for at in range(0, len(due), EMIT_EVERY):
                fired, moved = await self._fire_group(due[at : at + EMIT_EVERY])
                fired_now += fired
                progressed += moved
            total += fired_now
            if not progressed:
                return total

    async def _fire_group(self, group: list[Doc]) -> tuple[int, int]:
        """Fire the due slots of a few chains once each; (fired here, chains moved on).

        A handful of writes for the group rather than four for each chain: one read of the
        chains, one insert of their firing records (each its own insert, so the fence is the same
        unique `_id` as a single decision's), one outbox document, one write of the advances.
        """
        db = self.rt.db
        # A cheap read drops candidates another replica has moved on since our scan; the firing
        # record stays the fence for the rest.
        fresh = await store.live_chains(db, [c["_id"] for c in group])
        now = self.rt.clock.now()  # the firing's own time: a pass can take a while
        ended: list[tuple[Doc, str, str]] = []  # (chain, state, by) to close
        slotted: list[tuple[Doc, list[chains.Slot], int]] = []
        docs: list[Doc] = []
        for chain in group:
            current = fresh.get(chain["_id"])
            if current is None or current["slot"] != chain["slot"]:
                continue
            slots = chains.schedule(chain["stages"])
            slot_no = int(chain["slot"])
            if slot_no >= len(slots):
                ended.append((chain, "done", "timer"))
                continue
            firing = chains.slot_firing(chain, slots[slot_no], now)
            decision_id = actions.slot_decision_id(chain["_id"], slots[slot_no].label)
            extra = {"kind": "slot", "chain_id": chain["_id"], "due_at": utc(chain["due_at"])}
            slotted.append((chain, slots, slot_no))
            docs.append(self._decision_doc(decision_id, firing, extra))
        recorded = await store.decide_many(db, docs) if docs else []
        fresh_events = [
            (d["_id"], d["events"]) for d, new in zip(docs, recorded, strict=True) if new and d["events"]
        ]
        if fresh_events:
            await self._emit(fresh_events)
        before = await store.get_decisions(
            db, [d["_id"] for d, new in zip(docs, recorded, strict=True) if not new]
        )
        moves: list[tuple[str, int, datetime]] = []
        for (chain, slots, slot_no), doc, new in zip(slotted, docs, recorded, strict=True):
            if new:
                self.fired += 1
                late = max((now - doc["due_at"]).total_seconds(), 0.0)
                self.lateness_seconds.observe(late)
                if self.keep_lateness:
                    self.lateness.append((now - doc["due_at"]).total_seconds())
            else:
                decided = before.get(doc["_id"])
                if decided is not None and decided.get("outcome") == "cancelled":
                    ended.append((chain, "cancelled", decided.get("by", "?")))
                    continue
                if decided is not None:
                    await self._emit_for_dead_decider(decided, doc["events"])
            # Fired here or before (by another replica, or by us before a crash): move on.
            if slot_no + 1 < len(slots):
                started = utc(chain["started_at"])
                moves.append(
                    (chain["_id"], slot_no + 1, started + timedelta(seconds=slots[slot_no + 1].offset))
                )
            else:
                ended.append((chain, "done", "timer"))
        await store.advance_many(db, moves)
        for chain, state, by in ended:
            await store.close(db, chain, state=state, at=now, by=by)
        return sum(recorded), len(moves) + len(ended)

    def _decision_doc(self, decision_id: str, firing: actions.Firing, extra: Doc) -> Doc:
        """The record of a firing: the fence, and what it decided, with its events kept so that a
        decision whose decider died can still be emitted."""
        return {
            "_id": decision_id,
            "outcome": "fired",
            "rule_id": firing.rule_id,
            "stage": firing.stage,
            "subject": firing.subject,
            "trigger": firing.trigger,
            "fired_at": firing.at,
            "owner": self.rt.instance,
            "decided_wall": time.time(),
            "actions": firing.summary()["actions"],
            "action_ids": [e.id for e in firing.emissions],
            "skipped": firing.skipped,
            "emitted": not firing.emissions,
            **extra,
            "events": [self.rt.outbox.entry(e.event, key=e.key, id=e.id) for e in firing.emissions],
        }

    async def _record(self, decision_id: str, firing: actions.Firing, extra: Doc) -> bool:
        """Decide a firing once (the fence), then put its events in the outbox; False if decided before."""
        doc = self._decision_doc(decision_id, firing, extra)
        if await store.decide(self.rt.db, doc):
            if doc["events"]:
                await self._emit([(decision_id, doc["events"])])
            return True
        before = await store.get_decision(self.rt.db, decision_id)
        if before is not None:
            await self._emit_for_dead_decider(before, doc["events"])
        return False

    async def _emit_for_dead_decider(self, before: Doc, entries: list[Doc]) -> None:
        """Met a decision made before: if its decider died between deciding and emitting, emit for
        it (same envelope ids, so a consumer that saw them drops them); a live one gets its grace."""
        if (
            before.get("outcome") == "fired"
            and not before.get("emitted")
            and time.time() - float(before.get("decided_wall", 0)) > self.emit_grace_seconds
        ):
            await self._emit([(before["_id"], before.get("events") or entries)])

    async def _emit(self, decisions: list[tuple[str, list[Doc]]]) -> None:
        """Put decisions' events in the outbox (store.emit_batch) and have the relay publish that
        document now (named by `_id`: no sweep of the outbox)."""
        emission = await store.emit_batch(self.rt.db, decisions)
        if emission is not None:
            self.rt.relay.wake(emission, collection=store.EMISSIONS)

    async def repair(self) -> int:
        """Emit decisions whose decider died before emitting them (older than the grace period)."""
        emitted = 0
        for doc in await store.unemitted(self.rt.db, time.time() - self.emit_grace_seconds):
            await self._emit([(doc["_id"], doc.get("events") or [])])
            emitted += 1
        return emitted

    async def run(self) -> None:
        """The timer loop: fire what is due, refresh the rules now and then, forever."""
        last_refresh = last_purge = last_repair = time.monotonic()
        while True:
            try:
                await self.fire_due()
                if time.monotonic() - last_refresh >= self.rules_refresh_seconds:
                    last_refresh = time.monotonic()
                    await self.reload()
                if time.monotonic() - last_purge >= self.purge_seconds:
                    last_purge = time.monotonic()
                    await store.purge_published(self.rt.db)
                if time.monotonic() - last_repair >= self.repair_seconds:
                    last_repair = time.monotonic()
                    await self.repair()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer loop failed; retrying")
            self.passes += 1
            await asyncio.sleep(self.poll_seconds)
