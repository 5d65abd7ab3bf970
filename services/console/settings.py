"""What the console reads from its environment (LINDUNGI_CONSOLE_*)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import credential_problems
from shared.settings import Mode, UnsafeSettings, secret_problems

# A development secret: real deployments set LINDUNGI_CONSOLE_SESSION_SECRET.
DEV_SESSION_SECRET = "lindungi-console-development-secret-not-for-production"
# The console's client secret at the development OpenID provider (deploy/local/oidc).
DEV_OIDC_CLIENT_SECRET = "dev-lindungi-console"


class ConsoleSettings(BaseSettings):
    """The console's settings: where the services answer, the session secret, defaults for readers."""

    model_config = SettingsConfigDict(env_prefix="LINDUNGI_CONSOLE_", extra="ignore")

    # The mode and the credential directory are the services' settings (LINDUNGI_ENV,
    # LINDUNGI_CREDENTIALS_DIR): the console signs users in against the same directory.
    env: Mode = Field("development", validation_alias=AliasChoices("LINDUNGI_ENV", "env"))
    credentials_dir: str = Field(
        "", validation_alias=AliasChoices("LINDUNGI_CREDENTIALS_DIR", "credentials_dir")
    )
    # The OpenID provider (the services' settings, LINDUNGI_OIDC_*): when an issuer is set the
    # sign-in page offers "Sign in with OpenID Connect" (services/console/oidc.py).
    oidc_issuer: str = Field("", validation_alias=AliasChoices("LINDUNGI_OIDC_ISSUER", "oidc_issuer"))
    oidc_audience: str = Field(
        "lindungi", validation_alias=AliasChoices("LINDUNGI_OIDC_AUDIENCE", "oidc_audience")
    )
    oidc_jwks_url: str = Field("", validation_alias=AliasChoices("LINDUNGI_OIDC_JWKS_URL", "oidc_jwks_url"))
    oidc_client_id: str = "lindungi-console"  # LINDUNGI_CONSOLE_OIDC_CLIENT_ID
    oidc_client_secret: SecretStr = SecretStr(DEV_OIDC_CLIENT_SECRET)
    # Where browsers reach the console (the provider redirects back to PUBLIC_URL/auth/oidc/callback);
    # unset: the URL of the request, fine on this machine, not behind a proxy.
    public_url: str = ""
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    session_hours: float = 12.0
    cookie_secure: bool = False  # true behind HTTPS
    registry_url: str = "http://127.0.0.1:8001"
    intake_url: str = "http://127.0.0.1:8002"
    casework_url: str = "http://127.0.0.1:8003"
    escalation_url: str = "http://127.0.0.1:8004"
    repatriation_url: str = "http://127.0.0.1:8005"
    service_timeout_seconds: float = 5.0
    default_locale: str = Field("id", pattern="^(id|en)$")
    default_timezone: str = "Asia/Jakarta"
    live_poll_ms: int = Field(1000, ge=200, le=10_000)

    def service_urls(self) -> dict[str, str]:
        """Base URL of each service the console talks to."""
        return {
            "registry": self.registry_url,
            "intake": self.intake_url,
            "casework": self.casework_url,
            "escalation": self.escalation_url,
            "repatriation": self.repatriation_url,
        }


def refuse_unsafe(settings: ConsoleSettings) -> None:
    """In production, refuse to start with the development session secret or credentials."""
    if settings.env != "production":
        return
    problems = secret_problems(
        "LINDUNGI_CONSOLE_SESSION_SECRET",
        settings.session_secret.get_secret_value(),
        development=DEV_SESSION_SECRET,
    ) + credential_problems(settings.credentials_dir)
    if settings.oidc_issuer:
        if settings.oidc_client_secret.get_secret_value() in ("", DEV_OIDC_CLIENT_SECRET):
            problems.append(
                "LINDUNGI_CONSOLE_OIDC_CLIENT_SECRET is unset or the development value: "
                "set the console client's secret at your OpenID provider"
            )
        if not settings.public_url.startswith("https://"):
            problems.append(
                "LINDUNGI_CONSOLE_PUBLIC_URL must be the console's https:// address "
                "(the provider sends users back to it)"
            )
    if problems:
        raise UnsafeSettings(problems)
