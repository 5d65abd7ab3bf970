"""The system under faults: its own Kafka and database, two replicas of every service, the faults.

The chaos run always starts its own copy of the infrastructure (deploy/local/infra.sh on free
ports, its own state directory, the jars and binaries already built under .cache/), because it
stops the database and restarts the broker: a shared broker or database (given by the
environment, or `make infra`) must never be touched. If the copy cannot start, the run fails
with infra.sh's reason.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local.run import Supervisor, free_port

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.sh"
SERVICES = ("registry", "intake", "casework", "escalation", "repatriation")


class InfraError(RuntimeError):
    """The chaos run's own Kafka or database could not be started or stopped."""


class OwnInfra:
    """A private Kafka broker and MongoDB-protocol server, started by infra.sh on free ports."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.ports = {
            "LINDUNGI_KAFKA_PORT": free_port(),
            "LINDUNGI_KAFKA_CONTROLLER_PORT": free_port(),
            "LINDUNGI_MONGO_PORT": free_port(),
            "LINDUNGI_FERRET_PORT": free_port(),
            "LINDUNGI_OIDC_PORT": free_port(),  # its own OpenID provider too (infra.sh up starts one)
        }
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LINDUNGI_")},
            "LINDUNGI_CACHE": os.environ.get("LINDUNGI_CACHE", str(ROOT / ".cache")),
            "LINDUNGI_STATE": str(state),
            "LINDUNGI_KAFKA_WAIT": "300",
            **{k: str(v) for k, v in self.ports.items()},
        }
        self.kafka = f"127.0.0.1:{self.ports['LINDUNGI_KAFKA_PORT']}"
        self.mongodb = f"mongodb://127.0.0.1:{self.ports['LINDUNGI_MONGO_PORT']}/"

    def run(self, command: str, timeout: float = 900) -> None:
        try:
            done = subprocess.run(
                ["bash", str(INFRA), command],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"infra.sh {command} did not finish within {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise InfraError(
                f"infra.sh {command} failed (state {self.state}, ports {self.ports}):\n{done.stderr[-3000:]}"
            )

    def up(self) -> None:
        self.run("up")

    def down(self) -> None:
        self.run("down", timeout=120)

    def stop_db(self) -> None:
        self.run("stop-db", timeout=60)

    def start_db(self) -> None:
        self.run("start-db", timeout=120)

    def restart_kafka(self) -> None:
        self.run("restart-kafka", timeout=420)


@dataclass
class Kill:
    name: str
    pid: int
    at: float  # monotonic
    back_at: float | None = None  # when the new process answered ready


@dataclass
class Replicas:
    """Two replicas of each service (same namespace: they share consumer groups and databases),
    kept running by `make run`'s Supervisor, tended from a thread."""

    env: dict[str, str]
    logs: Path
    replicas: int = 2
    ports: dict[str, int] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ports = {f"{s}.{i}": free_port() for s in SERVICES for i in range(1, self.replicas + 1)}
        self.sup = Supervisor(self.env, self.ports, logs=self.logs)
        self._lock = threading.Lock()
        self.pids: dict[str, set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tend, name="supervisor", daemon=True)
        self._thread.start()

    def _tend(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.sup.tend()
                for name, proc in self.sup.procs.items():
                    self.pids.setdefault(name, set()).add(proc.pid)
            time.sleep(0.2)

    def starts(self) -> int:
        """Processes started so far (first starts and restarts)."""
        with self._lock:
            return sum(len(p) for p in self.pids.values())

    def urls(self, service: str) -> list[str]:
        return [f"http://127.0.0.1:{p}" for n, p in self.ports.items() if n.partition(".")[0] == service]

    async def ready(self, name: str) -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                r = await c.get(f"http://127.0.0.1:{self.ports[name]}/readyz")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_ready(self, timeout: float) -> list[str]:
        """Wait until every replica answers ready; the names of those that did not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = set(self.ports)
        while waiting and loop.time() < deadline:
            for name in list(waiting):
                if await self.ready(name):
                    waiting.discard(name)
            await asyncio.sleep(0.5)
        return sorted(waiting)

    def alive(self) -> list[str]:
        with self._lock:
            return [n for n, p in self.sup.procs.items() if p.poll() is None and n not in self.sup.due]

    def kill(self, name: str) -> Kill:
        """kill -9 one replica; the Supervisor restarts it."""
        with self._lock:
            proc = self.sup.procs[name]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)  # reaped: no longer counted alive, so never killed twice
        k = Kill(name, proc.pid, time.monotonic())
        self.kills.append(k)
        return k

    async def watch_return(self, k: Kill, timeout: float = 300) -> None:
        """Record when the killed replica's successor answers ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with self._lock:
                restarted = self.sup.procs[k.name].pid != k.pid
            if restarted and await self.ready(k.name):
                k.back_at = time.monotonic()
                return
            await asyncio.sleep(0.5)

    def restarts(self) -> int:
        return len(self.kills)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sup.stop()
