"""``{% segment_webhooks segment as hooks %}``: the endpoints that receive a segment's
events, for the segment pages' "used by" notes and warnings (templates/webhooks/
segment_used_by.html), so those pages need no webhook code in their views."""

from __future__ import annotations

from django import template

from webhooks.selectors import endpoints_for_every_segment, endpoints_for_segment

register = template.Library()


@register.simple_tag
def segment_webhooks(segment) -> dict:
    pk = getattr(segment, "pk", None)
    if not pk:
        return {"named": [], "every": 0}
    return {"named": endpoints_for_segment(pk), "every": endpoints_for_every_segment()}
