"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each request carries ``webhook-id`` (stable for a delivery, so receivers can de-duplicate),
``webhook-timestamp`` (seconds since the epoch, new for each attempt) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` values, each over
``{id}.{timestamp}.{body}`` with the endpoint's secret (the base64 part after ``whsec_``).
After a rotation, the previous secret signs as well until the overlap window ends, so a
receiver still holding the old secret keeps verifying.

docs/webhooks_receiver.py verifies with the standard library only; ``verify`` here is the
same check, used by the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

PREFIX = "whsec_"
SECRET_BYTES = 32
TOLERANCE_SECONDS = 5 * 60


class SignatureInvalid(Exception):
    pass


def secret_new() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three signature headers, signed with every secret given (current first)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(
    secret: str,
    request_headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureInvalid unless one of the request's signatures is ``secret``'s and the
    timestamp is within ``tolerance`` seconds (replayed old requests are refused)."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        sent = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise SignatureInvalid("missing or malformed webhook headers") from exc
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureInvalid("timestamp outside the tolerance")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in sent):
        raise SignatureInvalid("no matching signature")
