"""Template filters for activity entries (the log page and the customer page's history)."""

from __future__ import annotations

from django import template

from activity import actions

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    return actions.action_label(action)


@register.filter
def change_items(entry) -> list[tuple[str, str]]:
    return actions.change_items(entry.action, entry.changes)
