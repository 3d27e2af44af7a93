"""The analytics events Workbench knows up front (the reference's event field table). Any
other valid name an API client sends is a custom event."""

from __future__ import annotations

BUILTIN_EVENTS: dict[str, tuple[str, str]] = {
    "card-cancelled": ("Card cancelled", "Customer cancelled a card"),
    "card-completed": ("Card completed", "Customer completed a card"),
    "card-dismissed": ("Card dismissed", "Customer dismissed a card"),
    "card-displayed": ("Card displayed", "Customer displayed a card"),
    "card-embargoed": ("Card embargoed", "Card was embargoed"),
    "card-expired": ("Card expired", "Card expired"),
    "card-published": ("Card published", "Card was sent"),
    "card-snoozed": ("Card snoozed", "Customer snoozed a card"),
    "card-subview-displayed": ("Card subview displayed", "Customer opened a subview"),
    "card-subview-exited": ("Card subview exited", "Customer exited a subview"),
    "card-unsnoozed": ("Card unsnoozed", "Card was unsnoozed"),
    "card-voted-down": ("Card voted-down", "Card was voted down"),
    "card-voted-up": ("Card voted-up", "Card was voted up"),
    "notification-received": ("Notification received", "Customer received a push notification"),
    "notification-sent": ("Notification sent", "A push notification was sent"),
    "runtime-vars-updated": (
        "Runtime vars-updated",
        "Runtime variables were updated for this customer",
    ),
    "sdk-initialized": ("SDK initialized", "Any of the SDKs was initialized for this customer"),
    "segment-entered": ("Segment entered", "Customer entered a segment"),
    "segment-exited": ("Segment exited", "Customer exited a segment"),
    "snooze-options-cancelled": ("Snooze options cancelled", "Customer cancelled snooze options"),
    "snooze-options-displayed": ("Snooze options displayed", "Customer displayed snooze options"),
    "stream-displayed": ("Stream displayed", "A stream was displayed for this customer"),
    "user-redirected": ("User redirected", "Customer was redirected after clicking a link"),
    "video-completed": ("Video completed", "Customer completed watching a card video"),
    "video-played": ("Video played", "Customer started watching a card video"),
}

# Emitted by Workbench itself when segment membership changes; API clients may not send them.
SYSTEM_EVENTS = frozenset({"segment-entered", "segment-exited"})
