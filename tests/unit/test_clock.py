"""The demo's accelerated clock: shared by every process through its epoch, refused in production."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from deploy.cli import app as cli
from deploy.local.run import demo_env
from services.console.settings import ConsoleSettings
from services.console.settings import refuse_unsafe as console_refuse_unsafe
from shared.clock import AcceleratedClock, SystemClock, clock_for
from shared.settings import Settings, UnsafeSettings, production_problems, refuse_unsafe

EPOCH = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


class Wall:
    """A wall clock a test moves."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_an_hour_passes_in_five_seconds_at_720_and_every_process_agrees() -> None:
    wall = Wall(EPOCH)
    one, other = AcceleratedClock(720, EPOCH, wall), AcceleratedClock(720, EPOCH, wall)
    assert one.now() == EPOCH  # simulated time starts at the epoch
    wall.at = EPOCH + timedelta(seconds=5)
    assert one.now() == other.now() == EPOCH + timedelta(hours=1)
    wall.at = EPOCH + timedelta(minutes=14)
    assert one.now() == EPOCH + timedelta(days=7)  # a week in 14 minutes
    assert one.wall_seconds(timedelta(hours=2)) == 10
    # a process started later (a restarted service) reads the same now: it depends on the epoch only
    assert AcceleratedClock(720, EPOCH.astimezone(), wall).now() == one.now()
    assert one.now().tzinfo is not None


def test_a_clock_that_would_go_slow_or_has_no_offset_is_refused() -> None:
    with pytest.raises(ValueError):
        AcceleratedClock(0.5, EPOCH)
    with pytest.raises(ValueError):
        AcceleratedClock(720, EPOCH.replace(tzinfo=None))


def test_settings_choose_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(Settings().clock(), SystemClock)
    assert isinstance(clock_for(1, None), SystemClock)
    monkeypatch.setenv("LINDUNGI_CLOCK_SPEED", "720")
    with pytest.raises(ValidationError, match="LINDUNGI_CLOCK_EPOCH"):
        Settings()
    monkeypatch.setenv("LINDUNGI_CLOCK_EPOCH", EPOCH.isoformat())
    clock = Settings().clock()
    assert isinstance(clock, AcceleratedClock) and clock.speed == 720 and clock.epoch == EPOCH
    # the console reads the same two settings
    console = ConsoleSettings()
    assert (console.clock_speed, console.clock_epoch) == (720, EPOCH)
    with pytest.raises(ValidationError):
        Settings(clock_speed=0.5, clock_epoch=EPOCH)


def test_production_refuses_an_accelerated_clock() -> None:
    fast = Settings(env="production", clock_speed=720, clock_epoch=EPOCH)
    assert any(p.startswith("LINDUNGI_CLOCK_SPEED is 720") for p in production_problems(fast))
    with pytest.raises(UnsafeSettings, match="LINDUNGI_CLOCK_SPEED"):
        refuse_unsafe(fast)
    assert not any("CLOCK" in p for p in production_problems(Settings(env="production")))
    with pytest.raises(UnsafeSettings, match="LINDUNGI_CLOCK_SPEED"):
        console_refuse_unsafe(ConsoleSettings(env="production", clock_speed=720, clock_epoch=EPOCH))


def test_every_process_of_make_demo_gets_the_same_clock() -> None:
    env = demo_env({"PATH": "/bin"}, 2880, EPOCH)
    assert env["PATH"] == "/bin" and env["LINDUNGI_CLOCK_SPEED"] == "2880"
    fields = {"clock_speed": env["LINDUNGI_CLOCK_SPEED"], "clock_epoch": env["LINDUNGI_CLOCK_EPOCH"]}
    clock = Settings.model_validate(fields).clock()
    assert isinstance(clock, AcceleratedClock) and clock.epoch == EPOCH and clock.speed == 2880


def test_the_demo_refuses_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINDUNGI_CLOCK_SPEED", raising=False)
    result = CliRunner().invoke(cli, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "accelerated clock" in result.output
