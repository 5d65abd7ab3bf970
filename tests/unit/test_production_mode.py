"""LINDUNGI_ENV=production: every development secret (or a missing secret) stops a start, named."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from services.console.settings import ConsoleSettings
from services.console.settings import refuse_unsafe as console_refuse_unsafe
from shared.auth import DATA, dev_token
from shared.settings import DEV_PII_KEY, Settings, UnsafeSettings, refuse_unsafe
from tests.support.harness import ROOT

GOOD_KEY = "k" * 20 + "-a-production-key-of-our-own"  # 48 characters, not the development one
GOOD_SECRET = "s" * 40


def _credentials(folder: Path, *, dev_for: str | None = None) -> Path:
    """A copy of the development directory with every credential replaced (one kept if asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, key in (("missions.yaml", "missions"), ("users.yaml", "users")):
        data = yaml.safe_load((DATA / name).read_text())
        for entry in data[key]:
            token = dev_token(entry["id"]) if entry["id"] == dev_for else f"prod-{entry['id']}-{'x' * 40}"
            entry["token_sha256"] = hashlib.sha256(token.encode()).hexdigest()
        (folder / name).write_text(yaml.safe_dump(data))
    return folder


def _production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "pii_key": GOOD_KEY,
        "credentials_dir": str(_credentials(tmp_path / "creds")),
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def _problems(settings: Settings) -> str:
    with pytest.raises(UnsafeSettings) as caught:
        refuse_unsafe(settings)
    return str(caught.value)


def test_development_starts_with_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LINDUNGI_ENV", "LINDUNGI_PII_KEY", "LINDUNGI_CREDENTIALS_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    assert settings.env == "development"
    assert settings.pii_key.get_secret_value() == DEV_PII_KEY
    refuse_unsafe(settings)  # no exception
    console_refuse_unsafe(ConsoleSettings())


def test_production_with_its_own_secrets_starts(tmp_path: Path) -> None:
    refuse_unsafe(_production(tmp_path))
    console_refuse_unsafe(
        ConsoleSettings(
            env="production",
            session_secret=GOOD_SECRET,
            credentials_dir=str(_credentials(tmp_path / "c2")),
        )
    )


def test_production_refuses_the_development_pii_key(tmp_path: Path) -> None:
    message = _problems(_production(tmp_path, pii_key=DEV_PII_KEY))
    assert "LINDUNGI_PII_KEY is the development value" in message


def test_production_refuses_a_short_pii_key(tmp_path: Path) -> None:
    message = _problems(_production(tmp_path, pii_key="short-key"))
    assert "LINDUNGI_PII_KEY is 9 characters long; production needs at least 32" in message


def test_production_refuses_missing_or_development_credentials(tmp_path: Path) -> None:
    assert "LINDUNGI_CREDENTIALS_DIR is not set" in _problems(_production(tmp_path, credentials_dir=""))
    assert "LINDUNGI_CREDENTIALS_DIR is the development directory" in _problems(
        _production(tmp_path, credentials_dir=str(DATA))
    )
    copied = tmp_path / "copied"
    shutil.copytree(DATA, copied)  # the development files under another name
    assert "accepts the development credential of" in _problems(
        _production(tmp_path, credentials_dir=str(copied))
    )
    one = _credentials(tmp_path / "one", dev_for="supervisor-dewi")
    assert "accepts the development credential of supervisor-dewi" in _problems(
        _production(tmp_path, credentials_dir=str(one))
    )
    assert "cannot read missions.yaml and users.yaml" in _problems(
        _production(tmp_path, credentials_dir=str(tmp_path / "nothing"))
    )


def test_production_checks_every_key_of_a_keyring(tmp_path: Path) -> None:
    ring = {"1": SecretStr(GOOD_KEY), "2": SecretStr("short")}
    message = _problems(_production(tmp_path, pii_keys=ring, pii_current_key="2", pii_key=DEV_PII_KEY))
    assert "LINDUNGI_PII_KEYS[2] is 5 characters long" in message
    assert "LINDUNGI_PII_INDEX_KEY (unset: LINDUNGI_PII_KEY) is the development value" in message
    assert "LINDUNGI_PII_KEYS[1]" not in message
    good = {"1": SecretStr(GOOD_KEY), "2": SecretStr(GOOD_KEY + "2")}
    refuse_unsafe(_production(tmp_path, pii_keys=good, pii_current_key="2", pii_index_key=GOOD_KEY))


def test_production_names_every_problem_at_once(tmp_path: Path) -> None:
    message = _problems(Settings(env="production"))
    assert "LINDUNGI_PII_KEY" in message and "LINDUNGI_CREDENTIALS_DIR" in message


def test_console_refuses_an_unset_session_secret(tmp_path: Path) -> None:
    creds = str(_credentials(tmp_path / "creds"))
    with pytest.raises(UnsafeSettings, match="LINDUNGI_CONSOLE_SESSION_SECRET is the development value"):
        console_refuse_unsafe(ConsoleSettings(env="production", credentials_dir=creds))
    with pytest.raises(UnsafeSettings, match="LINDUNGI_CREDENTIALS_DIR is not set"):
        console_refuse_unsafe(ConsoleSettings(env="production", session_secret=GOOD_SECRET))


@pytest.mark.parametrize(
    ("service", "extra", "named"),
    [
        ("intake", {}, "LINDUNGI_PII_KEY is the development value"),
        ("registry", {"LINDUNGI_PII_KEY": "too-short"}, "LINDUNGI_PII_KEY is 9 characters long"),
        ("console", {}, "LINDUNGI_CONSOLE_SESSION_SECRET is the development value"),
    ],
)
def test_a_real_process_in_production_refuses_to_start(
    service: str, extra: dict[str, str], named: str, tmp_path: Path
) -> None:
    """The same settings as a fresh `docker compose up` without an .env: the process exits, saying why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINDUNGI_")}
    env |= {"LINDUNGI_ENV": "production", **extra}
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", f"services.{service}.app:create_app", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "refusing to start in production" in proc.stderr
    assert named in proc.stderr
    assert "LINDUNGI_CREDENTIALS_DIR is not set" in proc.stderr


def test_production_needs_an_https_openid_provider_with_an_audience(tmp_path: Path) -> None:
    refuse_unsafe(_production(tmp_path, oidc_issuer="https://id.example.go.id/"))  # no exception
    assert "LINDUNGI_OIDC_ISSUER must be an https:// URL" in _problems(
        _production(tmp_path, oidc_issuer="http://127.0.0.1:9096/")
    )
    assert "LINDUNGI_OIDC_JWKS_URL must be an https:// URL" in _problems(
        _production(tmp_path, oidc_issuer="https://id.example.go.id/", oidc_jwks_url="http://10.0.0.5/keys")
    )
    assert "LINDUNGI_OIDC_AUDIENCE is empty" in _problems(
        _production(tmp_path, oidc_issuer="https://id.example.go.id/", oidc_audience=" ")
    )


def test_hashed_credentials_stop_in_production_only_when_a_provider_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.auth import static_credentials_accepted

    monkeypatch.setenv("LINDUNGI_ENV", "production")
    monkeypatch.delenv("LINDUNGI_OIDC_ISSUER", raising=False)
    assert static_credentials_accepted()
    monkeypatch.setenv("LINDUNGI_OIDC_ISSUER", "https://id.example.go.id/")
    assert not static_credentials_accepted()
    monkeypatch.setenv("LINDUNGI_ENV", "development")
    assert static_credentials_accepted()
