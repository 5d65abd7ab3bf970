"""Time is injected: services ask a clock, tests move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _wall() -> datetime:
    return datetime.now(UTC)


class AcceleratedClock:
    """Simulated time for demos: now = epoch + (wall - epoch) * speed.

    A pure function of the wall clock, so every process started with the same epoch and speed
    (the services of `make demo`, their replicas, a restarted one, the demo's narrator) reads
    the same now without talking to the others. Refused in production (shared/settings.py).
    """

    def __init__(self, speed: float, epoch: datetime, wall: Callable[[], datetime] = _wall) -> None:
        if speed < 1:
            raise ValueError(f"a clock speed below 1 would run time backwards or slow: {speed}")
        if epoch.tzinfo is None:
            raise ValueError("the epoch needs a UTC offset")
        self.speed = speed
        self.epoch = epoch.astimezone(UTC)
        self._wall = wall

    def now(self) -> datetime:
        return self.epoch + (self._wall() - self.epoch) * self.speed

    def wall_seconds(self, simulated: timedelta) -> float:
        """How long a stretch of simulated time takes on the wall clock."""
        return simulated.total_seconds() / self.speed


def clock_for(speed: float, epoch: datetime | None) -> Clock:
    """The wall clock at speed 1, else the accelerated clock shared through its epoch."""
    if speed == 1:
        return SystemClock()
    if epoch is None:
        raise ValueError(
            "LINDUNGI_CLOCK_EPOCH is needed with LINDUNGI_CLOCK_SPEED: every process must share it"
        )
    return AcceleratedClock(speed, epoch)


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward and return the new now."""
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def utc(dt: datetime) -> datetime:
    """Normalise an aware datetime to UTC (MongoDB hands back naive UTC unless told otherwise)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
