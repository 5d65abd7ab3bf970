"""The Grafana dashboard and the Prometheus configuration name what the services really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["shared/metrics.py", "services/escalation/engine.py", "services/casework/metrics.py"]
SUFFIXES = ("_total", "_count", "_bucket", "_sum")


def defined() -> set[str]:
    names: set[str] = set()
    for src in SOURCES:
        names |= set(re.findall(r'"(lindungi_[a-z_]+)"', (ROOT / src).read_text()))
    return names


def test_every_series_on_the_dashboard_is_exported() -> None:
    dash = json.loads((ROOT / "deploy/grafana/lindungi.json").read_text())
    used = {
        name
        for panel in dash["panels"]
        for target in panel["targets"]
        for name in re.findall(r"lindungi_[a-z_]+", target["expr"])
    }
    known = defined()
    assert len(known) >= 12
    for name in used:
        base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
        assert base in known, f"{name} is on the dashboard but no service exports {base}"


def test_prometheus_scrapes_the_console_and_every_service_at_its_port() -> None:
    from deploy.local.run import SERVICES

    conf = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in conf["scrape_configs"]}
    assert jobs == {n: [f"127.0.0.1:{p}"] for n, p in SERVICES.items()}


async def test_the_console_counts_its_pages_by_route_template() -> None:
    import httpx

    from services.console.app import create_app
    from services.console.settings import ConsoleSettings

    transport = httpx.ASGITransport(app=create_app(ConsoleSettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        assert (await client.get("/healthz")).status_code == 200
        # letters, not digits: the exposition's `_created` timestamps hold any run of digits
        assert (await client.get("/no-such-page-xyzzy")).status_code == 404
        text = (await client.get("/metrics")).text
    assert (
        'lindungi_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1.0' in text
    )
    assert "xyzzy" not in text  # an unmatched path is not a label
