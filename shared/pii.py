"""Personal data at rest: NIK, passport and phone numbers encrypted (AES-GCM), found by a keyed hash (HMAC).

Encryption keys can change. Each ciphertext names the key that made it (`v2:<key id>:<base64>`);
several keys can be configured, one of them current: new values are encrypted under the
current key, and every configured key still decrypts. `lindungi pii rotate` re-encrypts stored
values to the current key, after which the old key can be removed. Ciphertexts written before
key ids (`v1:<base64>`) decrypt under whichever configured key authenticates them.

The lookup hash has one key, which is not rotated: its hashes are identity, not storage. A
worker's id is derived from the hash of their NIK (registry), intake files departures and links
reports under hashes, and casework keys cases by the worker key intake derives from them;
hashes travel in events (DepartureRecorded) and rest in other services' projections. Changing
the index key would change who is who in every service at once, and could only be done by
re-deriving those ids everywhere together. So it is a setting of its own
(LINDUNGI_PII_INDEX_KEY, defaulting to LINDUNGI_PII_KEY, whose hashes existing data carries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from shared.settings import Settings

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
LEGACY = "v1:"  # before key ids: encrypted under the one key of that time
TAGGED = "v2:"


def normalise(kind: str, value: str) -> str:
    """One spelling per identifier: no spaces or dashes, upper case, NFKC."""
    text = unicodedata.normalize("NFKC", value).upper()
    return (
        "".join(ch for ch in text if ch.isalnum()) if kind in ("nik", "passport") else " ".join(text.split())
    )


def _derive(secret: str, purpose: bytes) -> bytes:
    root = hashlib.sha256(secret.encode()).digest()
    return hmac.new(root, purpose, hashlib.sha256).digest()


def key_id_of(token: str) -> str | None:
    """The id of the key a ciphertext was made under (None: written before key ids)."""
    if token.startswith(TAGGED):
        return token[len(TAGGED) :].split(":", 1)[0]
    return None


class Vault:
    """Encrypts, decrypts and blind-indexes personal identifiers.

    `Vault(secret)` is one key (id "1") that also keys the lookup hash, as before key ids;
    `Vault(keys={id: secret}, current=id, index_secret=...)` is a keyring.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        keys: Mapping[str, str] | None = None,
        current: str | None = None,
        index_secret: str | None = None,
    ) -> None:
        if keys is None:
            if secret is None:
                raise ValueError("a Vault needs a secret or keys")
            keys, current = {"1": secret}, "1"
        if not keys:
            raise ValueError("a Vault needs at least one key")
        for key_id in keys:
            if not KEY_ID.match(key_id):
                raise ValueError(f"key id {key_id!r}: letters, digits, '-' and '_' only (1-32)")
        current = current or (next(iter(keys)) if len(keys) == 1 else None)
        if current is None or current not in keys:
            raise ValueError(f"the current key {current!r} is not one of the configured keys {sorted(keys)}")
        self.current: str = current
        self._aeads = {k: AESGCM(_derive(s, b"lindungi/encrypt/v1")) for k, s in keys.items()}
        index = index_secret if index_secret is not None else secret
        if index is None:
            raise ValueError("a keyring needs the index secret (the lookup hash's key)")
        self._idx = _derive(index, b"lindungi/index/v1")

    @property
    def key_ids(self) -> list[str]:
        """The ids of the configured keys."""
        return sorted(self._aeads)

    def lookup_hash(self, kind: str, value: str) -> str:
        """A keyed hash to find a record by an identifier without storing it in clear."""
        msg = f"{kind}:{normalise(kind, value)}".encode()
        return hmac.new(self._idx, msg, hashlib.sha256).hexdigest()

    def encrypt(self, kind: str, value: str) -> str:
        """AES-GCM ciphertext (nonce included) under the current key, bound to the kind of identifier."""
        nonce = os.urandom(12)
        ct = self._aeads[self.current].encrypt(nonce, normalise(kind, value).encode(), kind.encode())
        return f"{TAGGED}{self.current}:" + base64.b64encode(nonce + ct).decode()

    def decrypt(self, kind: str, token: str) -> str:
        """The clear value of a ciphertext made under any configured key."""
        key_id = key_id_of(token)
        if key_id is not None:
            aead = self._aeads.get(key_id)
            if aead is None:
                raise KeyError(f"ciphertext under key {key_id!r}, which is not configured")
            raw = base64.b64decode(token.split(":", 2)[2])
            return aead.decrypt(raw[:12], raw[12:], kind.encode()).decode()
        raw = base64.b64decode(token.removeprefix(LEGACY))
        for candidate in sorted(self._aeads, key=lambda k: k != self.current):
            try:
                return self._aeads[candidate].decrypt(raw[:12], raw[12:], kind.encode()).decode()
            except InvalidTag:
                continue
        raise KeyError("a ciphertext from before key ids that no configured key opens")

    def is_current(self, token: str) -> bool:
        """Whether a ciphertext is under the current key (rotation leaves it alone)."""
        return key_id_of(token) == self.current

    def reencrypt(self, kind: str, token: str) -> str:
        """The same value under the current key."""
        return self.encrypt(kind, self.decrypt(kind, token))


def vault_for(settings: Settings) -> Vault:
    """The vault a service's settings describe (ValueError naming the setting when inconsistent)."""
    index = settings.pii_index_key or settings.pii_key
    if not settings.pii_keys:
        return Vault(settings.pii_key.get_secret_value(), index_secret=index.get_secret_value())
    keys = {k: v.get_secret_value() for k, v in settings.pii_keys.items()}
    try:
        return Vault(
            keys=keys, current=settings.pii_current_key or None, index_secret=index.get_secret_value()
        )
    except ValueError as exc:
        raise ValueError(f"LINDUNGI_PII_KEYS / LINDUNGI_PII_CURRENT_KEY: {exc}") from None
