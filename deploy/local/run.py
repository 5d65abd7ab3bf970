"""`make run`: the console and all five services as processes on this machine, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "console": 8000,
    "registry": 8001,
    "intake": 8002,
    "casework": 8003,
    "escalation": 8004,
    "repatriation": 8005,
}
LOGS = ROOT / ".cache" / "logs"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def main() -> int:
    """Start every service, print where to look, stop them all on Ctrl-C."""
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, port in SERVICES.items():
        log = open(LOGS / f"{name}.log", "ab")
        procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{name}.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    deadline = time.monotonic() + 90
    waiting = set(SERVICES)
    while waiting and not stop and time.monotonic() < deadline:
        for name in list(waiting):
            if procs[name].poll() is not None:
                print(f"{name} exited at start; see {LOGS / (name + '.log')}", file=sys.stderr)
                stop = True
            elif _ready(SERVICES[name]):
                waiting.discard(name)
        time.sleep(0.3)
    if waiting and not stop:
        print(f"not ready after 90 s: {', '.join(sorted(waiting))}; see {LOGS}", file=sys.stderr)
    if not stop:
        print("\nLindungi is running. Where to look:")
        print(f"  {'console':<13} http://127.0.0.1:{SERVICES['console']}/   (sign in: user id and dev-<id>)")
        for name, port in SERVICES.items():
            if name != "console":
                print(f"  {name:<13} http://127.0.0.1:{port}/docs   (ready: /readyz)")
        print("  kafka         127.0.0.1:9092      mongodb (ferretdb) mongodb://127.0.0.1:27017/")
        print(f"  logs          {LOGS}/<service>.log")
        print("  credentials   dev-<id> from shared/data/*.yaml, e.g. 'Authorization: Bearer dev-kbri-seoul'")
        print("\nTry: .cache/venv/bin/python -m deploy.local.smoke   (posts incidents, times post -> case)")
        print("Ctrl-C stops the services; `make down` stops Kafka and the database.")
    while not stop and all(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
