"""The national-volume benchmarks' inputs: exactly the asked number of timers falls due, the CSV
export bench.imports writes is valid, and it and the reports bench.casework posts name distinct
workers (else the benchmarks would measure rejections, or updates of one worker or one case), and
the seed's desk queues hold recent cases, as a worked desk's do (else they grow with the year)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.casework import incident_report
from bench.escalation import falls_due
from bench.imports import export
from bench.seed import RECENT, state_weights
from services.registry import domain, imports
from services.registry.models import DepartureIn


@pytest.mark.parametrize(("n", "due"), [(10, 10), (10, 3), (100_000, 1000), (7, 0), (1000, 999)])
def test_exactly_the_asked_number_of_timers_falls_due(n: int, due: int) -> None:
    assert sum(falls_due(i, n, due) for i in range(n)) == due


def test_the_export_is_valid_and_every_row_a_distinct_worker() -> None:
    header, rows = imports.read_csv(export(500))
    assert not domain.missing_columns(header)
    parsed = [DepartureIn.model_validate(domain.row_to_input(row)) for _, row in rows]
    assert len(parsed) == 500
    assert len({p.nik for p in parsed}) == 500
    assert len({p.passport_number for p in parsed}) == 500
    assert len({p.full_name for p in parsed}) < 500  # some names shared, as in a real year
    assert not any(ch.isdigit() for p in parsed for ch in p.full_name)


def test_the_incidents_bench_names_distinct_workers_some_by_a_shared_name() -> None:
    reports = [incident_report(i) for i in range(1000)]
    named = [r["worker"] for r in reports if "date_of_birth" in r["worker"]]
    assert len({(w["full_name"], w["date_of_birth"]) for w in named}) == len(named)  # a worker each
    assert 50 < len(reports) - len(named) < 150  # about one in ten by name alone
    names = [r["worker"]["full_name"] for r in reports]
    assert len(set(names)) < len(names)  # some names shared, as in a real year
    assert not any(ch.isdigit() for name in names for ch in name)
    assert reports[7] == incident_report(7)  # the same reports in every run


def test_the_seeds_cases_wait_in_a_queue_when_recent_and_rarely_once_old() -> None:
    def waiting_share(age: timedelta) -> float:
        states, weights = state_weights(age)
        waiting = sum(w for s, w in zip(states, weights, strict=True) if s in ("new", "triaged", "assigned"))
        return waiting / sum(weights)

    assert waiting_share(timedelta(hours=5)) >= 0.5
    assert waiting_share(RECENT) >= 0.5
    assert waiting_share(RECENT + timedelta(hours=1)) < 0.01
    assert waiting_share(timedelta(days=300)) < 0.01
    assert "closed" in state_weights(timedelta(days=300))[0]
