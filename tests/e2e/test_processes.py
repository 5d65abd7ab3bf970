"""The services as separate processes, as `make run` starts them, talking over real Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from deploy.local.run import free_port
from shared.settings import Settings
from tests.support.harness import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def services(settings: Settings) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
        "LINDUNGI_OUTBOX_POLL_SECONDS": "0.2",
    }
    procs, urls = [], {}
    for name in ("intake", "casework"):
        port = free_port()
        procs.append(
            subprocess.Popen(
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
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        for name, url in urls.items():
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    errs = b"".join(p.stderr.read() for p in procs if p.poll() is not None and p.stderr)
                    pytest.fail(f"{name} did not become ready: {errs.decode()[-2000:]}")
                time.sleep(0.2)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_incident_posted_over_http_is_a_case_in_another_process(services: dict[str, str]) -> None:
    incident = {
        "mission_id": "kbri-seoul",
        "country": "KR",
        "worker": {"full_name": "Siti Rahayu"},
        "category": "injury",
        "severity": "critical",
        "occurred_at": "2026-11-20T09:30:00+09:00",
    }
    headers = {"Authorization": "Bearer dev-kbri-seoul"}
    r = httpx.post(f"{services['intake']}/v1/incidents", json=incident, headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    incident_id = r.json()["incident_id"]
    deadline = time.monotonic() + 15
    found: list[dict[str, object]] = []
    while not found and time.monotonic() < deadline:
        found = httpx.get(
            f"{services['casework']}/v1/cases",
            params={"incident_id": incident_id},
            headers={"Authorization": "Bearer dev-officer-ani"},
            timeout=5,
        ).json()
        time.sleep(0.1)
    assert found, "no case within 15 s"
    assert found[0]["category"] == "injury"
    assert found[0]["severity"] == "critical"
