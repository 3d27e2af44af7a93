"""Writes to members. Each keeps the rule that an installation always has an active Admin."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from members.models import Member
from members.roles import Role


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def member_create(
    *, email: str, name: str, role: str, password: str | None = None
) -> tuple[Member, str]:
    """Create a member; returns it with its initial password (shown once)."""
    email = email.strip().lower()
    if Member.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A member with this e-mail address already exists."})
    password = password or generate_password()
    member = Member.objects.create_user(
        email=email, password=password, name=name.strip(), role=role
    )
    return member, password


def _ensure_other_active_admin(member: Member) -> None:
    others = Member.objects.select_for_update().filter(role=Role.ADMIN, is_active=True)
    if not others.exclude(pk=member.pk).exists():
        raise ValidationError("Workbench needs at least one active Admin; this is the last one.")


@transaction.atomic
def member_update(*, member: Member, name: str, role: str, is_active: bool) -> Member:
    losing_admin = (
        member.role == Role.ADMIN and member.is_active and (role != Role.ADMIN or not is_active)
    )
    if losing_admin:
        _ensure_other_active_admin(member)
    member.name = name.strip()
    member.role = role
    member.is_active = is_active
    member.save(update_fields=["name", "role", "is_active"])
    return member


def member_reset_password(*, member: Member) -> str:
    password = generate_password()
    member.set_password(password)
    member.save(update_fields=["password"])
    return password


def profile_update(*, member: Member, name: str, timezone: str) -> Member:
    member.name = name.strip()
    member.timezone = timezone
    member.save(update_fields=["name", "timezone"])
    return member
