"""Finds or starts the real Kafka broker and MongoDB-protocol server the tests run against.

Order: endpoints given in the environment (KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI);
else testcontainers when a Docker engine answers; else deploy/local/infra.sh (Kafka jars on
the JVM and FerretDB). If none can start, the run stops with the reason: it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Endpoints:
    kafka: str
    mongodb: str
    how: str


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_or_start() -> tuple[Endpoints, list[object]]:
    """The endpoints, and anything started here that must be stopped at the end."""
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        return Endpoints(kafka, mongo, "environment"), []
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        k = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        m = MongoDbContainer("mongo:8")
        k.start()
        m.start()
        return Endpoints(k.get_bootstrap_server(), m.get_connection_url(), "testcontainers"), [k, m]
    script = ROOT / "deploy" / "local" / "infra.sh"
    run = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        pytest.exit(
            "Could not start the real Kafka and MongoDB-protocol server for the tests:\n"
            + run.stderr[-3000:],
            returncode=3,
        )
    kafka_port = os.environ.get("LINDUNGI_KAFKA_PORT", "9092")
    mongo_port = os.environ.get("LINDUNGI_MONGO_PORT", "27017")
    return (
        Endpoints(f"127.0.0.1:{kafka_port}", f"mongodb://127.0.0.1:{mongo_port}/", "deploy/local/infra.sh"),
        [],
    )


def find_or_start_oidc() -> str:
    """The issuer of the real OpenID provider the tests use (deploy/local/oidc, started by
    infra.sh if it is not running; LINDUNGI_TEST_OIDC_ISSUER names another one)."""
    given = os.environ.get("LINDUNGI_TEST_OIDC_ISSUER")
    if given:
        return given
    script = ROOT / "deploy" / "local" / "infra.sh"
    run = subprocess.run(["bash", str(script), "up-oidc"], capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        pytest.exit("Could not start the OpenID provider for the tests:\n" + run.stderr[-3000:], returncode=3)
    return f"http://127.0.0.1:{os.environ.get('LINDUNGI_OIDC_PORT', '9096')}/"
