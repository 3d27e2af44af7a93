"""Roles and what each may do. Roles are nested: an Admin can do all a Marketer can, and a
Marketer all a Viewer can, so every check is "at least this role"."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    VIEWER = "viewer", "Viewer"


RANK = {Role.VIEWER: 0, Role.MARKETER: 1, Role.ADMIN: 2}

DESCRIPTIONS = {
    Role.ADMIN: "Everything, including members, API tokens, custom fields and webhooks.",
    Role.MARKETER: "Customers, tags, segments, imports and the Do Not Contact list.",
    Role.VIEWER: "Read only.",
}


def role_at_least(role: str, minimum: str) -> bool:
    return RANK[Role(role)] >= RANK[Role(minimum)]
