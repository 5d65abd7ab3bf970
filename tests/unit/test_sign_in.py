"""Sign-in without I/O: claims onto principals, a session that ends with its token, the console's
settings with an OpenID provider in production."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.console.session import Sealer, Session
from services.console.settings import ConsoleSettings, refuse_unsafe
from shared.auth import load_directory, principal_from_claims
from shared.oidc import InvalidToken, looks_like_jwt
from shared.settings import UnsafeSettings


def test_claims_map_onto_the_same_principal_as_the_directory() -> None:
    directory = load_directory()
    mission = principal_from_claims({"sub": "kbri-seoul", "lindungi_mission": "kbri-seoul"}, directory)
    assert mission == directory.authenticate("dev-kbri-seoul")
    region = principal_from_claims(
        {
            "sub": "region-dki",
            "name": "Pemprov DKI Jakarta",
            "lindungi_roles": ["region", "emperor"],
            "lindungi_provinces": ["DKI Jakarta"],
        },
        directory,
    )
    assert region == directory.authenticate("dev-region-dki")  # unknown roles are ignored
    # the jurisdiction is the directory's: countries in a token are not read
    seoul = principal_from_claims(
        {"sub": "x", "lindungi_mission": "kbri-seoul", "countries": ["JP", "SA"]}, directory
    )
    assert seoul.countries == {"KR"}
    with pytest.raises(InvalidToken, match="mission this service does not know"):
        principal_from_claims({"sub": "x", "lindungi_mission": "kbri-atlantis"}, directory)
    with pytest.raises(InvalidToken, match="without lindungi_mission"):
        principal_from_claims({"sub": "x", "lindungi_roles": ["mission"]}, directory)
    nobody = principal_from_claims({"sub": "x", "lindungi_roles": "officer"}, directory)
    assert nobody.roles == frozenset() and nobody.name == "x"


def test_only_three_part_tokens_go_to_the_provider() -> None:
    assert looks_like_jwt("a.b.c") and not looks_like_jwt("dev-officer-ani")


def test_a_session_ends_when_its_access_token_expires() -> None:
    sealer = Sealer("secret", max_age_seconds=3600)
    base = Session(user_id="officer-ani", name="Ani", roles=frozenset({"officer"}), credential="a.b.c")
    later = Session(**{**base.__dict__, "expires_at": time.time() + 60})
    gone = Session(**{**base.__dict__, "expires_at": time.time() - 1})
    assert sealer.open(sealer.seal(later)) == later
    assert sealer.open(sealer.seal(gone)) is None
    assert sealer.open(sealer.seal(base)) == base  # development credentials: the cookie's lifetime


def test_the_console_in_production_with_a_provider_needs_its_secret_and_public_address(
    tmp_path: Path,
) -> None:
    from tests.unit.test_production_mode import GOOD_SECRET, _credentials

    creds = str(_credentials(tmp_path / "creds"))
    ok = ConsoleSettings(
        env="production",
        credentials_dir=creds,
        session_secret=GOOD_SECRET,
        oidc_issuer="https://id.example.go.id/",
        oidc_client_secret="c" * 40,
        public_url="https://lindungi.example.go.id",
    )
    refuse_unsafe(ok)  # no exception
    with pytest.raises(UnsafeSettings) as caught:
        refuse_unsafe(ok.model_copy(update={"oidc_client_secret": ConsoleSettings().oidc_client_secret}))
    assert "LINDUNGI_CONSOLE_OIDC_CLIENT_SECRET" in str(caught.value)
    with pytest.raises(UnsafeSettings) as caught:
        refuse_unsafe(ok.model_copy(update={"public_url": "http://lindungi.example.go.id"}))
    assert "LINDUNGI_CONSOLE_PUBLIC_URL" in str(caught.value)
