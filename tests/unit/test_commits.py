"""Consumers' offsets committed in groups (shared/kafka.Commits), against a consumer that records
what it is asked to commit: exactly what was handled, never past it, and everything by a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from faststream.message import AckStatus

from shared.kafka import Commits

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


class Consumer:
    def __init__(self, held: set[TopicPartition]) -> None:
        self.held = set(held)
        self.committed: list[dict[TopicPartition, int]] = []
        self.fail = 0
        self.during: Callable[[], Awaitable[None]] | None = None  # runs inside the next commit

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.during is not None:
            during, self.during = self.during, None
            await during()
        if self.fail:
            self.fail -= 1
            raise CommitFailedError("the group rebalanced")
        self.committed.append(dict(offsets))


def message(consumer: Consumer, tp: TopicPartition, offset: int) -> Any:
    raw = SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset)
    return SimpleNamespace(raw_message=raw, consumer=consumer, committed=None)


async def test_a_group_commits_the_next_offset_of_each_partition_once_most_are_noted() -> None:
    consumer = Consumer({P0, P1})
    commits = Commits(every=3600, most=3)
    first = message(consumer, P0, 7)
    await commits.handled(first)
    await commits.handled(message(consumer, P1, 2))
    assert consumer.committed == [], "two of three: nothing committed yet"
    assert first.committed == AckStatus.ACKED, "FastStream's own per-message commit is skipped"
    await commits.handled(message(consumer, P0, 8))
    assert consumer.committed == [{P0: 9, P1: 3}]
    await commits.stopping()


async def test_a_quiet_consumer_commits_within_every_seconds() -> None:
    consumer = Consumer({P0})
    commits = Commits(every=0.05, most=1000)
    await commits.handled(message(consumer, P0, 0))
    for _ in range(100):
        if consumer.committed:
            break
        await asyncio.sleep(0.02)
    assert consumer.committed == [{P0: 1}]
    await commits.stopping()


async def test_a_partition_taken_away_is_committed_before_and_not_after() -> None:
    consumer = Consumer({P0, P1})
    commits = Commits(every=3600, most=1000)
    await commits.handled(message(consumer, P0, 4))
    await commits.on_partitions_revoked({P0})
    assert consumer.committed == [{P0: 5}], "committed before the group hands it on"
    consumer.held = {P1}
    await commits.handled(message(consumer, P0, 5))  # finished while the partition was moving
    await commits.handled(message(consumer, P1, 0))
    await commits.stopping()
    assert consumer.committed == [{P0: 5}, {P1: 1}], "a partition no longer held is left to its new owner"


async def test_a_failed_commit_is_tried_again_without_going_back() -> None:
    consumer = Consumer({P0, P1})
    commits = Commits(every=3600, most=2)
    consumer.fail = 1

    async def a_later_message_of_p0() -> None:
        await commits.handled(message(consumer, P0, 1))

    consumer.during = a_later_message_of_p0  # noted while the commit of offsets 0 is under way
    await commits.handled(message(consumer, P0, 0))
    await commits.handled(message(consumer, P1, 0))  # the commit of both fails
    assert consumer.committed == []
    await commits.flush()
    assert consumer.committed == [{P0: 2, P1: 1}], "P0's later note is kept over the failed older one"
    await commits.stopping()


async def test_a_stop_during_the_timers_commit_keeps_its_notes_and_commits_them() -> None:
    consumer = Consumer({P0})
    commits = Commits(every=0.01, most=1000)
    in_commit, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        in_commit.set()
        await release.wait()

    consumer.during = hold
    await commits.handled(message(consumer, P0, 3))
    await asyncio.wait_for(in_commit.wait(), 5)  # the timer's commit has taken the notes
    await commits.stopping()  # cancels the timer inside its commit
    assert consumer.committed == [{P0: 4}], "what the cancelled commit held is committed by the stop"


async def test_a_revoke_waits_for_the_commit_under_way() -> None:
    consumer = Consumer({P0})
    commits = Commits(every=3600, most=1)
    consumer.fail = 1
    revoking: list[asyncio.Task[None]] = []

    async def revoke_meanwhile() -> None:
        revoking.append(asyncio.create_task(commits.on_partitions_revoked({P0})))
        await asyncio.sleep(0.01)
        assert not revoking[0].done(), "the revoke waits for the commit under way"

    consumer.during = revoke_meanwhile
    await commits.handled(message(consumer, P0, 0))  # its commit fails while a revoke comes in
    await revoking[0]
    assert consumer.committed == [{P0: 1}], "the revoke committed what the failed commit kept"
    await commits.stopping()


async def test_from_a_stop_on_each_message_is_committed_at_once() -> None:
    consumer = Consumer({P0})
    commits = Commits(every=3600, most=1000)
    await commits.handled(message(consumer, P0, 0))
    await commits.stopping()
    assert consumer.committed == [{P0: 1}]
    await commits.handled(message(consumer, P0, 1))  # a handler still running when the stop began
    assert consumer.committed == [{P0: 1}, {P0: 2}]
    commits.resume()
    await commits.handled(message(consumer, P0, 2))
    assert consumer.committed == [{P0: 1}, {P0: 2}], "started again: in groups"
    await commits.stopping()
    assert consumer.committed[-1] == {P0: 3}
