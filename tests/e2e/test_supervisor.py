"""`make run` supervises: a service killed with -9 comes back by itself; the others never stop."""

from __future__ import annotations

import os
import signal
import time

import pytest

from deploy.local.run import Supervisor, _ready, free_port
from shared.settings import Settings

pytestmark = pytest.mark.e2e


def wait_until(check, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_killed_service_is_restarted_and_the_others_keep_running(settings: Settings) -> None:
    env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
    }
    ports = {"intake": free_port(), "casework": free_port()}
    sup = Supervisor(env, ports)
    try:
        assert wait_until(lambda: (sup.tend(), all(_ready(p) for p in ports.values()))[1], 90)
        intake_pid = sup.procs["intake"].pid
        casework_pid = sup.procs["casework"].pid
        os.kill(casework_pid, signal.SIGKILL)
        assert wait_until(lambda: (sup.tend(), sup.procs["casework"].pid != casework_pid)[1], 20)
        assert sup.restarts["casework"] == 1
        assert wait_until(lambda: (sup.tend(), _ready(ports["casework"]))[1], 90)
        # intake was never touched: the same process, ready all along
        assert sup.procs["intake"].pid == intake_pid and sup.procs["intake"].poll() is None
        assert _ready(ports["intake"])
    finally:
        sup.stop()
