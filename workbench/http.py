"""Typed request classes and request helpers shared by every app."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from members.models import Member


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class MemberRequest(HtmxHttpRequest):
    user: Member


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only as far as our own proxies.

    Each trusted proxy appends the address it saw, so the client's address is the Nth entry
    from the right; anything further left was written by the client and is ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return remote
