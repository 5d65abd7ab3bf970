"""The PII vault's keys: ciphertexts name their key, several keys decrypt, one is current."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from shared.pii import Vault, key_id_of, vault_for
from shared.settings import Settings

OLD, NEW = "old-secret-" + "o" * 30, "new-secret-" + "n" * 30


def legacy_token(secret: str, kind: str, value: str) -> str:
    """A ciphertext as the vault wrote it before key ids (`v1:`), computed independently."""
    root = hashlib.sha256(secret.encode()).digest()
    key = hmac.new(root, b"lindungi/encrypt/v1", hashlib.sha256).digest()
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), kind.encode())
    return "v1:" + base64.b64encode(nonce + sealed).decode()


def legacy_hash(secret: str, kind: str, value: str) -> str:
    root = hashlib.sha256(secret.encode()).digest()
    idx = hmac.new(root, b"lindungi/index/v1", hashlib.sha256).digest()
    return hmac.new(idx, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def test_a_ciphertext_names_its_key_and_any_configured_key_decrypts() -> None:
    before = Vault(OLD)
    token = before.encrypt("nik", "3174012345678901")
    assert key_id_of(token) == "1" and token.startswith("v2:1:")
    ring = Vault(keys={"1": OLD, "2": NEW}, current="2", index_secret=OLD)
    assert ring.decrypt("nik", token) == "3174012345678901"
    fresh = ring.encrypt("nik", "3174012345678901")
    assert key_id_of(fresh) == "2" and ring.is_current(fresh) and not ring.is_current(token)
    assert key_id_of(ring.reencrypt("nik", token)) == "2"
    with pytest.raises(KeyError, match="key '2', which is not configured"):
        before.decrypt("nik", fresh)


def test_values_written_before_key_ids_still_read_and_hash_the_same() -> None:
    token = legacy_token(OLD, "passport", "C1234567")
    ring = Vault(keys={"1": OLD, "2": NEW}, current="2", index_secret=OLD)
    assert key_id_of(token) is None and not ring.is_current(token)
    assert ring.decrypt("passport", token) == "C1234567"
    assert Vault(OLD).decrypt("passport", token) == "C1234567"
    # the lookup hash of existing data is unchanged, whatever the encryption keys
    assert ring.lookup_hash("nik", "3174012345678901") == legacy_hash(OLD, "nik", "3174012345678901")
    assert Vault(OLD).lookup_hash("nik", "3174012345678901") == legacy_hash(OLD, "nik", "3174012345678901")
    with pytest.raises(KeyError):
        Vault(NEW).decrypt("passport", token)


def test_a_keyring_from_settings_and_its_mistakes() -> None:
    ring = vault_for(
        Settings(pii_keys={"a": SecretStr(OLD), "b": SecretStr(NEW)}, pii_current_key="b", pii_key=OLD)
    )
    assert ring.current == "b" and ring.key_ids == ["a", "b"]
    assert ring.lookup_hash("nik", "1") == Vault(OLD).lookup_hash("nik", "1")  # index key: LINDUNGI_PII_KEY
    with pytest.raises(ValueError, match="LINDUNGI_PII_CURRENT_KEY: the current key None"):
        vault_for(Settings(pii_keys={"a": SecretStr(OLD), "b": SecretStr(NEW)}))
    with pytest.raises(ValueError, match="the current key 'c' is not one of"):
        vault_for(Settings(pii_keys={"a": SecretStr(OLD)}, pii_current_key="c"))
    with pytest.raises(ValueError, match="key id 'a:b'"):
        vault_for(Settings(pii_keys={"a:b": SecretStr(OLD)}))
