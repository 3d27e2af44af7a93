"""Per-token request budget: a fixed one-minute window counted in Redis."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


def api_rate_limit_hit(token_id: int) -> int:
    """Count one request; return 0 when allowed, else the seconds until the budget refills."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"api-rate:{token_id}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    used = cache.incr(key)
    if used > settings.API_RATE_LIMIT_PER_MINUTE:
        return max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1)
    return 0
