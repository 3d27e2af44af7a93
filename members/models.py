from __future__ import annotations

import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone as dj_timezone

from members.roles import Role, role_at_least


class MemberManager(BaseUserManager["Member"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: object) -> Member:
        if not email:
            raise ValueError("A member needs an e-mail address")
        member = self.model(email=self.normalize_email(email).lower(), **fields)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> Member:
        fields["role"] = Role.ADMIN
        return self.create_user(email, password, **fields)


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class Member(AbstractBaseUser):
    """A person who signs in to Workbench. One role each; see members/roles.py."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    timezone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=dj_timezone.now)
    # Per-member screen settings, e.g. {"customer_columns": [...]}.
    preferences = models.JSONField(default=dict, blank=True)

    objects = MemberManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="member_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    @property
    def initials(self) -> str:
        parts = (self.name or self.email).replace("@", " ").split()
        return "".join(p[0] for p in parts[:2]).upper()

    def has_role(self, minimum: str) -> bool:
        return self.is_active and role_at_least(self.role, minimum)

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)

    @property
    def can_edit(self) -> bool:
        return self.has_role(Role.MARKETER)

    # Django's auth machinery asks these; Workbench has no Django admin site.
    is_staff = False
    is_superuser = False

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False
