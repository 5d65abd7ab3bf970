"""`make run`: the console and all five services as processes on this machine, until Ctrl-C.

`make demo` (`--demo`): the same on an accelerated clock, with `lindungi demo` run on it once
everything is ready. Every process gets the same LINDUNGI_CLOCK_SPEED and LINDUNGI_CLOCK_EPOCH
(the launcher's start), so the services, a restarted one and the demo's narrator agree on the
simulated time (shared/clock.py).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
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
# The webhook signing secret of the development channel file's partner (a deployment sets its own).
DEV_WEBHOOK_SECRETS = '{"satgas-tppo": "dev-webhook-secret"}'
DEMO_SPEED = 2880.0  # simulated seconds per second: an hour in 1.25 s, the demo's week in about 3 minutes


# A desk claim's lease in the demo (simulated minutes): a day, so that a claim outlives the real
# seconds between the officer's claim and acknowledgement even on a busy machine (queues.yaml's
# 30 minutes pass in well under a second at the demo's speed).
DEMO_CLAIM_LEASE_MINUTES = 24 * 60


def demo_env(env: dict[str, str], speed: float, now: datetime) -> dict[str, str]:
    """The environment of every process of a demo: one accelerated clock, its epoch now."""
    return {
        **env,
        "LINDUNGI_CLOCK_SPEED": f"{speed:g}",
        "LINDUNGI_CLOCK_EPOCH": now.isoformat(),
        "LINDUNGI_CLAIM_LEASE_MINUTES": str(DEMO_CLAIM_LEASE_MINUTES),
    }


def _taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A free loopback port below Linux's ephemeral range (32768-60999).

    A port the kernel hands out for `bind(0)` is in that range, where any outgoing connection
    (a Kafka or MongoDB client) may take it between our check and the service's bind: that was
    seen, a service dying on "address already in use". Below the range only listeners compete.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except (OSError, http.client.HTTPException):  # not up yet, or something else on the port
        return False


def _start(name: str, port: int, env: dict[str, str], logs: Path = LOGS) -> subprocess.Popen[bytes]:
    """Start one service process; `name` may carry a replica suffix ("casework.2")."""
    service = name.partition(".")[0]
    with open(logs / f"{name}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{service}.app:create_app",
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


class Supervisor:
    """Keeps every service running: one that dies is restarted with backoff; the others go on."""

    BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before the 1st, 2nd... restart in a row
    STEADY = 60.0  # a service up this long has its backoff forgotten

    def __init__(
        self, env: dict[str, str], services: dict[str, int] | None = None, *, logs: Path = LOGS
    ) -> None:
        """services: name (a service, or service.replica) -> HTTP port."""
        logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.logs = logs
        self.services = services or SERVICES
        self.procs = {name: _start(name, port, env, logs) for name, port in self.services.items()}
        self.started_at = dict.fromkeys(self.services, time.monotonic())
        self.restarts = dict.fromkeys(self.services, 0)
        self.due: dict[str, float] = {}  # name -> monotonic time of its restart

    def tend(self) -> None:
        """Notice deaths, schedule restarts, carry out the ones that are due."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            if name in self.due or proc.poll() is None:
                continue
            if now - self.started_at[name] > self.STEADY:
                self.restarts[name] = 0
            wait = self.BACKOFF[min(self.restarts[name], len(self.BACKOFF) - 1)]
            self.restarts[name] += 1
            self.due[name] = now + wait
            print(
                f"[supervisor] {name} exited (code {proc.returncode}); restarting in {wait:.0f} s "
                f"(restart {self.restarts[name]}); log: {self.logs / (name + '.log')}",
                flush=True,
            )
        for name, when in list(self.due.items()):
            if now >= when:
                del self.due[name]
                self.procs[name] = _start(name, self.services[name], self.env, self.logs)
                self.started_at[name] = now
                print(f"[supervisor] {name} restarted (pid {self.procs[name].pid})", flush=True)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


OIDC_ISSUER = f"http://127.0.0.1:{os.environ.get('LINDUNGI_OIDC_PORT', '9096')}/"


def main(argv: list[str] | None = None) -> int:
    """Start every service, print where to look, keep them running until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.run", description=__doc__)
    parser.add_argument(
        "--demo", action="store_true", help="run on an accelerated clock and play `lindungi demo` on it"
    )
    parser.add_argument(
        "--speed", type=float, default=DEMO_SPEED, help="with --demo: simulated seconds per second"
    )
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("LINDUNGI_WEBHOOK_SECRETS", DEV_WEBHOOK_SECRETS)
    if args.demo:
        busy = [f"{name} ({port})" for name, port in SERVICES.items() if _taken(port)]
        if busy:
            print(
                f"already in use: {', '.join(busy)}. Stop `make run` first: the demo starts the "
                "services itself, on its own clock.",
                file=sys.stderr,
            )
            return 1
        if args.speed < 1:
            print("--speed must be at least 1", file=sys.stderr)
            return 2
        env = demo_env(env, args.speed, datetime.now(UTC))
    # The OpenID provider infra.sh started: services accept its tokens, the console offers it.
    env.setdefault("LINDUNGI_OIDC_ISSUER", OIDC_ISSUER)
    # The notification sink: escalation's email and webhooks land there (printed here, kept in .cache/mail).
    sink = subprocess.Popen([sys.executable, "-m", "deploy.local.sink"], cwd=ROOT, env=env)
    sup = Supervisor(env)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    deadline = time.monotonic() + 90
    waiting = set(SERVICES)
    while waiting and not stop and time.monotonic() < deadline:
        sup.tend()
        for name in list(waiting):
            if _ready(SERVICES[name]):
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
        print(
            "  notifications SMTP 127.0.0.1:8025, webhooks 127.0.0.1:8026; printed here, kept in .cache/mail/"
        )
        print(
            f"  sign-in       OpenID provider {env['LINDUNGI_OIDC_ISSUER']}  (users: the ids of "
            "shared/data/*.yaml, password dev-<id>; missions' client credentials: id and dev-<id>)"
        )
        print(f"  logs          {LOGS}/<service>.log")
        print("  credentials   dev-<id> from shared/data/*.yaml, e.g. 'Authorization: Bearer dev-kbri-seoul'")
        print("\nTry: .cache/venv/bin/python -m deploy.local.smoke   (posts incidents, times post -> case)")
        print("A service that stops is restarted (the supervisor says so here).")
        print("Ctrl-C stops the services; `make down` stops Kafka and the database.", flush=True)
    demo: subprocess.Popen[bytes] | None = None
    if args.demo and not stop:
        if waiting:
            print("the demo does not start: not every service is ready", file=sys.stderr)
        else:
            hour = 3600 / args.speed
            print(
                f"\nThe demo: the clock runs {args.speed:g} times fast (an hour every {hour:g} s).\n",
                flush=True,
            )
            demo = subprocess.Popen([sys.executable, "-m", "deploy.cli", "demo"], cwd=ROOT, env=env)
    while not stop:
        sup.tend()
        if demo is not None and demo.poll() is not None:
            print(
                f"\nThe demo ended (exit {demo.returncode}). The services keep running on the demo "
                f"clock (an hour every {3600 / args.speed:g} s) with its data, to explore; "
                "Ctrl-C stops them.",
                flush=True,
            )
            demo = None
        time.sleep(0.5)
    if demo is not None:
        demo.terminate()
    sup.stop()
    sink.terminate()
    try:
        sink.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sink.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
