"""The actions the activity log records, in plain words. An action is "<target>.<verb>";
a plural target means a bulk entry (one entry, ``count`` customers)."""

from __future__ import annotations

from typing import Any

ACTION_LABELS: dict[str, str] = {
    "customer.created": "Created customer",
    "customer.updated": "Updated customer",
    "customer.erased": "Erased customer",
    "customers.upserted": "Created or updated customers",
    "customers.erased": "Erased customers",
    "customers.created_from_events": "Created customers from events",
    "customers.exported": "Exported customers",
    "customers.tagged": "Tagged customers",
    "customers.untagged": "Untagged customers",
    "custom_field.created": "Created custom field",
    "custom_field.renamed": "Renamed custom field",
    "custom_field.deleted": "Deleted custom field",
    "tag.created": "Created tag",
    "tag.renamed": "Renamed tag",
    "tag.deleted": "Deleted tag",
    "tag.merged": "Merged tags",
    "segment.created": "Created segment",
    "segment.updated": "Updated segment",
    "segment.deleted": "Deleted segment",
    "segment.exported": "Exported segment members",
    "do_not_contact.added": "Added to Do Not Contact",
    "do_not_contact.removed": "Removed from Do Not Contact",
    "do_not_contact.exported": "Exported Do Not Contact entries",
    "do_not_contact.imported": "Imported Do Not Contact entries",
    "webhook.created": "Created webhook endpoint",
    "webhook.updated": "Updated webhook endpoint",
    "webhook.deleted": "Deleted webhook endpoint",
    "webhook.enabled": "Enabled webhook endpoint",
    "webhook.disabled": "Disabled webhook endpoint",
    "webhook.secret_rotated": "Rotated webhook secret",
    "webhook.tested": "Sent a webhook test event",
    "webhook.replayed": "Replayed webhook deliveries",
    "webhook.audience_sent": "Sent customers to a webhook endpoint",
}

TARGET_TYPES: dict[str, str] = {
    "customer": "Customers",
    "custom_field": "Custom fields",
    "tag": "Tags",
    "segment": "Segments",
    "dnc_entry": "Do Not Contact",
    "webhook": "Webhooks",
}

CHANGE_TEXT_MAX = 120


def action_label(action: str) -> str:
    """ "customer.updated" → "Updated customer"; actions added later read sensibly too."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    noun, _, verb = action.partition(".")
    if not verb:
        return action.replace("_", " ").capitalize()
    return f"{verb.replace('_', ' ').capitalize()} {noun.replace('_', ' ')}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def change_items(action: str, changes: dict[str, Any]) -> list[tuple[str, str]]:
    """``changes`` as (name, text) pairs. Renames store [old, new] and read "old → new".
    Only non-personal values are ever stored (see customers/profile.py::mask_changes)."""
    items = []
    for name, value in (changes or {}).items():
        if action.endswith(".renamed") and isinstance(value, list) and len(value) == 2:
            text = f"{_text(value[0])} → {_text(value[1])}"
        else:
            text = _text(value)
        if len(text) > CHANGE_TEXT_MAX:
            text = text[: CHANGE_TEXT_MAX - 1] + "…"
        items.append((name.replace("_", " "), text))
    return items
