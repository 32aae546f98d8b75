"""Encryption at rest for data-source credentials (Fernet: AES-128-CBC + HMAC-SHA256).

`DASHIN_SECRET_KEY` is either a Fernet key or any string of 32+ characters, from which a key is
derived with HKDF, so operators can paste a long random string from their secret manager.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from runtime.errors import ConfigurationError, SystemFailure


def fernet_for(secret_key: str) -> Fernet:
    try:
        return Fernet(secret_key.encode())
    except (ValueError, TypeError):
        pass
    if len(secret_key) < 32:
        raise ConfigurationError("DASHIN_SECRET_KEY must be a Fernet key or at least 32 characters")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"dashin-credentials", info=b"fernet"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt_json(secret_key: str, value: dict[str, Any]) -> bytes:
    return fernet_for(secret_key).encrypt(json.dumps(value, separators=(",", ":")).encode())


def decrypt_json(secret_key: str, token: bytes | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        data = fernet_for(secret_key).decrypt(bytes(token))
    except InvalidToken:
        raise SystemFailure(
            "stored credentials cannot be decrypted with DASHIN_SECRET_KEY (was the key changed?)"
        ) from None
    result: dict[str, Any] = json.loads(data)
    return result
