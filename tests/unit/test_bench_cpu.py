"""The benchmarks' CPU account: what bounds incidents -> cases when the machine's cores are busy."""

from __future__ import annotations

from bench.casework import PYTHON, cpu_line, cpu_seconds


def test_this_process_is_counted_and_its_cpu_only_grows() -> None:
    before = cpu_seconds()
    sum(i * i for i in range(300_000))  # some CPU of our own
    after = cpu_seconds()
    assert after[PYTHON] > before[PYTHON] >= 0


def test_the_ceiling_is_the_cores_over_the_cpu_an_incident() -> None:
    # 100 incidents in 2 s, costing 3 s of CPU in all (30 ms each): 2 cores allow 66.7 a second
    figures = {"elapsed": 2.0, "cpu": {PYTHON: 1.2, "store": 1.5, "kafka": 0.3}}
    line = cpu_line(figures, 100, cores=2)
    assert "python 12.0, store 15.0, kafka 3.0; all 30.0" in line
    assert "2 cores allow 66.7 cases/s (0.75 of it used)" in line
