from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Source(models.TextChoices):
    """Where a change came from; shared by tag assignments and the activity log."""

    UI = "ui", "Workbench"
    API = "api", "API"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


class Tag(models.Model):
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )

    class Meta:
        ordering = [Lower("name")]
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class CustomerTag(models.Model):
    """A tag on a customer, with when and by what it was added (segments ask "tagged within
    the last 7 days")."""

    # No index of their own: the unique (customer, tag) and (tag, added_at) indexes lead with
    # them. Every index here is paid per assignment, and an import adds a million at a time.
    # No database constraints on the customer and the tag: their checks at commit locked the
    # customer and the tag once per assignment (a row lock is a write), ~5 of a 1M-row
    # import's ~16 seconds of merge. Instead every writer locks the customers and tags it
    # names (FOR KEY SHARE; an import's new and changed customers are its own or locked
    # already), and deleting a customer (customers_erase) or a tag (tags_delete) deletes the
    # rows first and the assignments after, so an assignment made meanwhile is either seen
    # and deleted or finds its customer or tag gone and is not made.
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        related_name="customer_tags",
        db_index=False,
        db_constraint=False,
    )
    tag = models.ForeignKey(
        Tag,
        on_delete=models.DO_NOTHING,
        related_name="customer_tags",
        db_index=False,
        db_constraint=False,
    )
    added_at = models.DateTimeField(default=timezone.now)
    # Mostly empty: indexed only where set (deleting a member or token finds its rows there).
    added_by = models.ForeignKey(
        "members.Member",
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
        db_index=False,
    )
    added_by_token = models.ForeignKey(
        "apitokens.ApiToken",
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
        db_index=False,
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.UI)
    # The import that added it, so undoing the import removes exactly the tags it added. No
    # database constraint: an import tags up to a million customers, and checking this key
    # cost ~3 µs a row at commit. Imports are never deleted once they have run (only drafts,
    # which tag no one), so the id always names its import.
    added_by_import = models.ForeignKey(
        "imports.Import",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique"),
        ]
        indexes = [
            models.Index(fields=["tag", "added_at"], name="customer_tag_tag_added_idx"),
            models.Index(
                fields=["added_by_import"],
                name="customer_tag_import_idx",
                condition=models.Q(added_by_import__isnull=False),
            ),
            models.Index(
                fields=["added_by"],
                name="customer_tag_member_idx",
                condition=models.Q(added_by__isnull=False),
            ),
            models.Index(
                fields=["added_by_token"],
                name="customer_tag_token_idx",
                condition=models.Q(added_by_token__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.customer_id}"
