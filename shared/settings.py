"""Settings from the environment (12-factor). KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI override all.

LINDUNGI_ENV says which mode a process runs in. `development` (the default, so that `make run`
and the tests need no settings) accepts the development secrets written in this repository;
`production` refuses to start while any of them is in use (`refuse_unsafe`), naming the setting.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import credential_problems
from shared.clock import Clock, clock_for

# A development key: real deployments set LINDUNGI_PII_KEY. Tests and `make run` use this one.
DEV_PII_KEY = "lindungi-development-key-not-for-production-use-0001"
MIN_SECRET_CHARS = 32  # a production secret: at least this long (`secrets.token_urlsafe(48)` is 64)
Mode = Literal["development", "production"]


class UnsafeSettings(RuntimeError):
    """A production process configured with a development secret, or without a required one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refusing to start in production (LINDUNGI_ENV=production): " + "; ".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="LINDUNGI_", extra="ignore", populate_by_name=True)

    env: Mode = "development"  # LINDUNGI_ENV
    # Where missions.yaml and users.yaml (hashed credentials) are; unset: the development ones
    # in shared/data. Read by shared.auth.load_directory from the same variable.
    credentials_dir: str = ""
    # The OpenID provider whose bearer JWTs every service accepts (shared/oidc.py); unset: none.
    # Read by shared.oidc.load_verifier from the same variables. In production with an issuer,
    # hashed credentials are no longer accepted (shared.auth.static_credentials_accepted).
    oidc_issuer: str = ""
    oidc_audience: str = "lindungi"
    oidc_jwks_url: str = ""

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
    # Personal data keys (shared/pii.py). One key: LINDUNGI_PII_KEY (its id is "1"). Several, to
    # rotate: LINDUNGI_PII_KEYS='{"1": "<old>", "2": "<new>"}' and LINDUNGI_PII_CURRENT_KEY=2,
    # then `lindungi pii rotate`. The lookup hash is keyed by LINDUNGI_PII_INDEX_KEY, which
    # defaults to LINDUNGI_PII_KEY and is not rotated (why: shared/pii.py).
    pii_key: SecretStr = SecretStr(DEV_PII_KEY)
    pii_keys: dict[str, SecretStr] = Field(default_factory=dict)
    pii_current_key: str = ""
    pii_index_key: SecretStr | None = None
    outbox_poll_seconds: float = 0.5
    outbox_lease_seconds: float = 30.0
    outbox_sweep_seconds: float = 5.0  # full sweeps for what crashed replicas left behind
    # Consumers commit the offsets of handled messages in groups (shared/kafka.Commits): every
    # commit_every_seconds, or at once when commit_most have gathered. Larger: fewer commits, and
    # more messages handled again after a crash (never lost: handlers are idempotent).
    commit_every_seconds: float = 0.2
    commit_most: int = 100
    # Read models consumed in batches (shared/kafka.subscribe's `batch`): at most batch_most records
    # at once, a batch at most every batch_linger_ms (what comes meanwhile waits for the next one);
    # an idle consumer asks the broker again after batch_wait_ms.
    batch_most: int = 100
    batch_linger_ms: int = 200
    batch_wait_ms: int = 100
    # Consumers whose events of different keys may be handled side by side (casework's placement
    # of reports): how many keys at once, each key's events in order.
    key_concurrency: int = 4
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
    # intake's incident door (HTTP): requests per window per mission credential, counted across
    # replicas (shared/ratelimit.py); 0 switches the limit off. Generous: a burst of 1,000 reports
    # from 5 missions (200 each) and the chaos load (a few a second from each of 8) stay far below;
    # a client in a retry loop does not.
    incident_rate_limit: int = 1200
    incident_rate_window_seconds: float = 60.0
    # Retention (UU PDP, shared/retention.py): registry anonymises departures that ended
    # (returned, deceased) this many days ago and workers left with no other departure;
    # casework, cases closed this many days ago. Once a day; 0 switches it off.
    retention_days: float = 5 * 365
    retention_every_seconds: float = 24 * 3600
    # A claim's lease, overriding casework's queues.yaml (minutes). The demo's accelerated clock
    # sets a simulated day, so a claim outlives the real seconds between claim and acknowledge.
    claim_lease_minutes: float | None = Field(None, gt=0)
    log_level: str = "INFO"
    instance: str = ""  # replica name in logs and leases; defaults to host:pid
    # The demo's accelerated clock (shared/clock.py): simulated seconds per wall-clock second,
    # from an epoch every process shares. 1 is the wall clock; anything else is refused in production.
    clock_speed: float = Field(1.0, ge=1)
    clock_epoch: AwareDatetime | None = None

    @model_validator(mode="after")
    def _clock_shared(self) -> Settings:
        if self.clock_speed != 1 and self.clock_epoch is None:
            raise ValueError(
                "LINDUNGI_CLOCK_EPOCH is needed with LINDUNGI_CLOCK_SPEED: every process must share it"
            )
        return self

    def clock(self) -> Clock:
        """The clock the settings ask for: the wall clock, or the demo's accelerated one."""
        return clock_for(self.clock_speed, self.clock_epoch)

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


def secret_problems(setting: str, value: str, *, development: str) -> list[str]:
    """Why a secret may not serve in production (empty when it may)."""
    if value == development:
        return [f"{setting} is the development value published in the source; set a secret of your own"]
    if len(value) < MIN_SECRET_CHARS:
        return [
            f"{setting} is {len(value)} characters long; production needs at least {MIN_SECRET_CHARS} "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        ]
    return []


def clock_problems(speed: float) -> list[str]:
    """An accelerated clock in production: deadlines would fire hours early."""
    if speed == 1:
        return []
    return [
        f"LINDUNGI_CLOCK_SPEED is {speed:g}: an accelerated clock is for demos; "
        "production runs on the wall clock (unset it)"
    ]


def production_problems(settings: Settings) -> list[str]:
    """What stops a service from starting in production: each names its setting."""
    problems: list[str] = clock_problems(settings.clock_speed)
    if settings.pii_keys:
        for key_id, secret in sorted(settings.pii_keys.items()):
            problems += secret_problems(
                f"LINDUNGI_PII_KEYS[{key_id}]", secret.get_secret_value(), development=DEV_PII_KEY
            )
    else:
        problems += secret_problems(
            "LINDUNGI_PII_KEY", settings.pii_key.get_secret_value(), development=DEV_PII_KEY
        )
    if settings.pii_index_key is not None:
        problems += secret_problems(
            "LINDUNGI_PII_INDEX_KEY", settings.pii_index_key.get_secret_value(), development=DEV_PII_KEY
        )
    elif settings.pii_keys:  # the index key is then LINDUNGI_PII_KEY's
        problems += secret_problems(
            "LINDUNGI_PII_INDEX_KEY (unset: LINDUNGI_PII_KEY)",
            settings.pii_key.get_secret_value(),
            development=DEV_PII_KEY,
        )
    return problems + oidc_problems(settings) + credential_problems(settings.credentials_dir)


def oidc_problems(settings: Settings) -> list[str]:
    """An OpenID provider in production: reached over HTTPS, with an audience of its own."""
    problems: list[str] = []
    for setting, url in (
        ("LINDUNGI_OIDC_ISSUER", settings.oidc_issuer),
        ("LINDUNGI_OIDC_JWKS_URL", settings.oidc_jwks_url),
    ):
        if url and not url.startswith("https://"):
            problems.append(f"{setting} must be an https:// URL (tokens and keys are trusted from it)")
    if settings.oidc_issuer and not settings.oidc_audience.strip():
        problems.append("LINDUNGI_OIDC_AUDIENCE is empty: tokens for any audience would be accepted")
    return problems


def refuse_unsafe(settings: Settings) -> None:
    """In production, raise UnsafeSettings when a development secret (or none) is configured."""
    if settings.env != "production":
        return
    problems = production_problems(settings)
    if problems:
        raise UnsafeSettings(problems)
