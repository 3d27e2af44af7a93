"""Sign-in throttling: failed attempts counted per e-mail address and per client address.

Counters live in Redis (the cache) with a fixed window. The client address comes from
workbench.http.client_ip, which trusts X-Forwarded-For only as far as our own proxies, so a
client cannot reset its count by sending a new header value with each attempt.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class ThrottleState:
    blocked: bool
    retry_after: int  # seconds until the window ends


def _keys(email: str, ip: str) -> list[tuple[str, int]]:
    window = int(time.time() // settings.LOGIN_FAILURE_WINDOW_SECONDS)
    email_hash = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [
        (f"login-fail:email:{email_hash}:{window}", settings.LOGIN_FAILURES_PER_EMAIL),
        (f"login-fail:ip:{ip}:{window}", settings.LOGIN_FAILURES_PER_IP),
    ]


def _retry_after() -> int:
    size = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return max(1, math.ceil(size - time.time() % size))


def login_throttle_state(email: str, ip: str) -> ThrottleState:
    keys = _keys(email, ip)
    counts = cache.get_many([key for key, _ in keys])
    blocked = any(counts.get(key, 0) >= limit for key, limit in keys)
    return ThrottleState(blocked=blocked, retry_after=_retry_after() if blocked else 0)


def login_failure_record(email: str, ip: str) -> None:
    for key, _ in _keys(email, ip):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        cache.incr(key)


def login_success_record(email: str, ip: str) -> None:
    """A correct password clears the address's count, not the client address's."""
    cache.delete(_keys(email, ip)[0][0])
