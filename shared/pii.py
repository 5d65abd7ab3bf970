"""Personal data at rest: NIK and passport numbers encrypted (AES-GCM), found by a keyed hash (HMAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def normalise(kind: str, value: str) -> str:
    """One spelling per identifier: no spaces or dashes, upper case, NFKC."""
    text = unicodedata.normalize("NFKC", value).upper()
    return (
        "".join(ch for ch in text if ch.isalnum()) if kind in ("nik", "passport") else " ".join(text.split())
    )


class Vault:
    """Encrypts, decrypts and blind-indexes personal identifiers with keys derived from one secret."""

    def __init__(self, secret: str) -> None:
        root = hashlib.sha256(secret.encode()).digest()
        self._enc = hmac.new(root, b"lindungi/encrypt/v1", hashlib.sha256).digest()
        self._idx = hmac.new(root, b"lindungi/index/v1", hashlib.sha256).digest()
        self._aead = AESGCM(self._enc)

    def lookup_hash(self, kind: str, value: str) -> str:
        """A keyed hash to find a record by an identifier without storing it in clear."""
        msg = f"{kind}:{normalise(kind, value)}".encode()
        return hmac.new(self._idx, msg, hashlib.sha256).hexdigest()

    def encrypt(self, kind: str, value: str) -> str:
        """AES-GCM ciphertext (nonce included), bound to the kind of identifier."""
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, normalise(kind, value).encode(), kind.encode())
        return "v1:" + base64.b64encode(nonce + ct).decode()

    def decrypt(self, kind: str, token: str) -> str:
        raw = base64.b64decode(token.removeprefix("v1:"))
        return self._aead.decrypt(raw[:12], raw[12:], kind.encode()).decode()
