"""Schemathesis against every service's OpenAPI document, as each kind of caller.

The services run as processes (as `make run` starts them) on the real broker and database.
Every response must be something other than a 5xx and conform to the schema the service
declares. `make test` runs a short pass (one caller per service, few examples per operation);
`make fuzz` runs every caller with more (LINDUNGI_FUZZ_EXAMPLES, LINDUNGI_FUZZ_FULL=1).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deploy.local.run import Supervisor, _ready, free_port
from shared.namespace import drop_namespace
from shared.settings import Settings
from tests.support.infra import find_or_start

pytestmark = pytest.mark.e2e

FULL = os.environ.get("LINDUNGI_FUZZ_FULL") == "1"
EXAMPLES = int(os.environ.get("LINDUNGI_FUZZ_EXAMPLES", "25" if FULL else "5"))
# service -> the callers it serves (the first is the short pass's)
CALLERS = {
    "registry": ["registry-operator", "region-dki", "officer-ani"],
    "intake": ["kbri-seoul", "officer-ani", "auditor-fajar"],
    "casework": ["supervisor-dewi", "officer-ani", "kbri-seoul", "auditor-fajar"],
    "escalation": ["supervisor-dewi", "admin-eko", "officer-ani"],
    "repatriation": ["officer-ani", "kbri-kuala-lumpur", "debarkation-cgk", "region-dki"],
}
RUNS = [(svc, who) for svc, callers in CALLERS.items() for who in (callers if FULL else callers[:1])]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[dict[str, int], Supervisor]]:
    endpoints, _ = find_or_start()
    env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": f"fuzz{os.getpid()}_",
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "MONGODB_URI": endpoints.mongodb,
    }
    ports = {name: free_port() for name in CALLERS}
    sup = Supervisor(env, ports)
    try:
        deadline = time.monotonic() + 120
        while not all(_ready(p) for p in ports.values()):
            sup.tend()
            assert time.monotonic() < deadline, "the services did not become ready within 120 s"
            time.sleep(0.5)
        yield ports, sup
    finally:
        sup.stop()
        gone = Settings(
            namespace=env["LINDUNGI_NAMESPACE"],
            kafka_bootstrap_servers=endpoints.kafka,
            mongodb_uri=endpoints.mongodb,
        )
        # pytest-asyncio may run a loop in this thread: drop the namespace from a thread of its own
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, drop_namespace(gone)).result()


@pytest.mark.parametrize(("service", "caller"), RUNS, ids=[f"{s}-{c}" for s, c in RUNS])
def test_no_server_error_and_every_answer_as_declared(
    services: tuple[dict[str, int], Supervisor], service: str, caller: str
) -> None:
    ports, sup = services
    deadline = time.monotonic() + 120
    while not _ready(ports[service]):  # one that died meanwhile is restarted by the supervisor
        sup.tend()
        assert time.monotonic() < deadline, f"{service} was not ready within 120 s"
        time.sleep(0.5)
    restarts = sup.restarts[service]
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"http://127.0.0.1:{ports[service]}/openapi.json",
            "--header",
            f"Authorization: Bearer dev-{caller}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing" + (",stateful" if FULL else ""),
            "--seed",
            "20261129",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = "\n".join(run.stdout.splitlines()[-60:])
    summary = next((line for line in run.stdout.splitlines() if " generated, " in line), "no summary")
    print(f"{service} as {caller}: {summary.strip()}")
    assert run.returncode == 0, f"schemathesis found failures for {service} as {caller}:\n{tail}"
    assert " generated, " in run.stdout and "passed" in summary
    sup.tend()
    assert sup.restarts[service] == restarts, f"{service} died while it was fuzzed: see its log"
