"""Import reads."""

from __future__ import annotations

from django.db.models import QuerySet

from imports.models import Import, ImportStatus


def import_list() -> QuerySet[Import]:
    """Imports that were started (drafts still in the wizard are not listed), newest first."""
    return (
        Import.objects.exclude(status=ImportStatus.DRAFT)
        .select_related("created_by", "token")
        .order_by("-created_at", "-id")
    )


def import_get(import_id: int) -> Import | None:
    return Import.objects.select_related("created_by", "token").filter(pk=import_id).first()
