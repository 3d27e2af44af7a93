"""The sidebar and the command palette's pages and actions, in one registry.

Only pages that exist are listed; each later feature adds its entries here. An entry is shown
only to members whose role reaches its minimum (the view checks again on its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from members.roles import Role


@dataclass(frozen=True)
class Entry:
    label: str
    url_name: str
    minimum: str = Role.VIEWER
    icon: str = ""
    anchor: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        return reverse(self.url_name) + (f"#{self.anchor}" if self.anchor else "")


SIDEBAR: list[tuple[str, list[Entry]]] = [
    (
        "",
        [
            Entry("Customers", "customer-list", icon="users", keywords=("people", "profiles")),
            Entry(
                "Segments",
                "segment-list",
                icon="segments",
                keywords=("segment", "audience", "rules", "cohort", "groups"),
            ),
            Entry(
                "Exports",
                "export-list",
                Role.MARKETER,
                icon="history",
                keywords=("export", "download", "csv", "xlsx", "excel"),
            ),
            Entry(
                "Imports",
                "import-list",
                icon="upload",
                keywords=("import", "csv", "upload", "customer data importer"),
            ),
        ],
    ),
    (
        "Configuration",
        [
            Entry(
                "Custom fields",
                "custom-field-list",
                Role.ADMIN,
                icon="fields",
                keywords=("field", "attributes", "profile"),
            ),
            Entry("Tags", "tag-list", icon="tag", keywords=("tag", "labels", "groups")),
            Entry(
                "Events",
                "event-list",
                icon="bolt",
                keywords=("event", "analytics", "catalog", "custom events"),
            ),
            Entry(
                "Do Not Contact",
                "dnc-list",
                icon="block",
                keywords=("do not contact", "suppression", "unsubscribe", "opt-out", "dnc"),
            ),
            Entry(
                "Webhooks",
                "webhook-list",
                Role.ADMIN,
                icon="webhook",
                keywords=("webhook", "endpoint", "integration", "deliveries", "relay"),
            ),
            Entry(
                "Activity",
                "activity-list",
                Role.MARKETER,
                icon="history",
                keywords=("audit", "log", "history", "changes"),
            ),
            Entry(
                "API tokens", "api-token-list", Role.ADMIN, icon="key", keywords=("rest", "bearer")
            ),
            Entry(
                "Members",
                "member-list",
                Role.ADMIN,
                icon="team",
                keywords=("users", "roles", "team"),
            ),
            Entry(
                "System status",
                "system-status",
                Role.ADMIN,
                icon="pulse",
                keywords=("health", "worker", "queue"),
            ),
        ],
    ),
]

ACTIONS: list[Entry] = [
    Entry("Add customer", "customer-new", Role.MARKETER, keywords=("new customer", "test user")),
    Entry(
        "New segment",
        "segment-new",
        Role.MARKETER,
        keywords=("create segment", "audience", "rules", "builder"),
    ),
    Entry("New tag", "tag-list", Role.MARKETER, anchor="new", keywords=("create tag",)),
    Entry(
        "New custom field",
        "custom-field-list",
        Role.ADMIN,
        anchor="new",
        keywords=("create field", "field"),
    ),
    Entry("New member", "member-list", Role.ADMIN, anchor="new", keywords=("invite", "add user")),
    Entry("New API token", "api-token-list", Role.ADMIN, anchor="new", keywords=("create token",)),
    Entry("Run a worker check", "system-status", Role.ADMIN, keywords=("ping", "job", "queue")),
    Entry("Your profile", "profile", keywords=("timezone", "account", "me")),
    Entry("Change password", "profile", anchor="password", keywords=("password",)),
]


def sidebar_for(member) -> list[tuple[str, list[Entry]]]:
    sections = []
    for title, entries in SIDEBAR:
        visible = [e for e in entries if member.has_role(e.minimum)]
        if visible:
            sections.append((title, visible))
    return sections


def palette_entries(member) -> list[tuple[str, Entry]]:
    pages = [("Page", e) for _, entries in SIDEBAR for e in entries]
    actions = [("Action", e) for e in ACTIONS]
    return [(kind, e) for kind, e in pages + actions if member.has_role(e.minimum)]


def palette_match(member, query: str, limit: int = 12) -> list[tuple[str, Entry]]:
    words = query.lower().split()
    matches = []
    for kind, entry in palette_entries(member):
        haystack = " ".join((entry.label, *entry.keywords)).lower()
        if all(word in haystack for word in words):
            # Labels that start with the query rank first.
            rank = 0 if entry.label.lower().startswith(query.lower().strip()) else 1
            matches.append((rank, kind, entry))
    matches.sort(key=lambda m: m[0])
    return [(kind, entry) for _, kind, entry in matches[:limit]]
