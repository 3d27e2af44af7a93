"""Token format: ``wbt_<8 hex>_<43 url-safe chars>``; only the SHA-256 of the whole is stored."""

from __future__ import annotations

import hashlib
import secrets

PREFIX_LEAD = "wbt_"


def token_generate() -> tuple[str, str]:
    """Return (plaintext token, visible prefix)."""
    prefix = PREFIX_LEAD + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()
