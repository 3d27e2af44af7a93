"""The bell in the sidebar: rendered on every page, so it is one indexed count query."""

from __future__ import annotations

from django import template

from notifications.selectors import notification_unread_count

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notifications_bell(context: template.Context) -> dict:
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {"show": True, "unread": notification_unread_count(user)}
