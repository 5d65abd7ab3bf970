"""Settings from the environment (12-factor). KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI override all."""

from __future__ import annotations

import re

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development key: real deployments set LINDUNGI_PII_KEY. Tests and `make run` use this one.
DEV_PII_KEY = "lindungi-development-key-not-for-production-use-0001"


class Settings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="LINDUNGI_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"),
    )
    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017/",
        validation_alias=AliasChoices("MONGODB_URI", "LINDUNGI_MONGODB_URI"),
    )
    # Prefix of topic names, consumer groups and database names: isolates test runs and
    # deployments that share one broker and one database server.
    namespace: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    # An event is a few KiB; anything past max_event_bytes is poison and goes to the DLQ whole.
    # Topics and the producer take up to max_message_bytes, so that such a message (or a
    # misbehaving producer's) can reach the DLQ with its original bytes instead of jamming.
    max_event_bytes: int = 1024 * 1024
    max_message_bytes: int = 8 * 1024 * 1024
    pii_key: SecretStr = SecretStr(DEV_PII_KEY)
    outbox_poll_seconds: float = 0.5
    outbox_lease_seconds: float = 30.0
    outbox_sweep_seconds: float = 5.0  # full sweeps for what crashed replicas left behind
    handler_attempts: int = 3
    handler_backoff_seconds: float = 0.2
    # escalation: how long a decision may stay unemitted before another replica emits it for its
    # decider (presumed dead), and how often that repair runs. Shorter: faster recovery after a
    # crash, at the price of more duplicates on the wire (same ids, dropped by consumers).
    escalation_emit_grace_seconds: float = 300.0
    escalation_repair_seconds: float = 60.0
    # escalation's notifications: the channel file (default: services/escalation/rules/channels.yaml),
    # the SMTP server (default: `make run`'s local sink), signing secrets of partners' webhooks by
    # name (JSON, e.g. {"satgas-tppo": "..."}), where case links point, tries and backoff.
    escalation_channels: str = ""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "lindungi@localhost"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    webhook_secrets: dict[str, SecretStr] = {}
    console_url: str = "http://127.0.0.1:8000"
    notify_attempts: int = 5
    notify_backoff_seconds: float = 30.0
    notify_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    instance: str = ""  # replica name in logs and leases; defaults to host:pid

    def topic(self, name: str) -> str:
        """The broker-side name of a catalog topic."""
        return f"{self.namespace}{name}"

    def group(self, name: str) -> str:
        """The broker-side name of a consumer group."""
        return f"{self.namespace}{name}"

    def database(self, service: str) -> str:
        """The database a service owns."""
        prefix = re.sub(r"[^A-Za-z0-9_]", "_", self.namespace)
        return f"{prefix}lindungi_{service}"
