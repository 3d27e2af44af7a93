from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper


class Customer(models.Model):
    """A customer profile. The user ID is the only required field (see the customers issue for
    the full profile; this is the core every later feature keys on)."""

    user_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)
    city = models.CharField(max_length=255, blank=True)
    country = models.CharField(max_length=2, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["email"], name="customer_email_idx"),
            models.Index(Upper("name"), name="customer_name_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.user_id

    @property
    def display_name(self) -> str:
        return (
            self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or self.user_id
        )
