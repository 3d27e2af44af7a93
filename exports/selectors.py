"""Reads: a member's exports, and the one export a member may download."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from exports.models import Export, ExportStatus
from exports.services import exports_dir
from members.models import Member

LIST_LIMIT = 100


def exports_for_member(member: Member) -> QuerySet[Export]:
    return Export.objects.filter(member=member).order_by("-created_at", "-pk")[:LIST_LIMIT]


def export_get_for_download(member: Member, pk: Any) -> Export:
    """The export's maker, or an Admin, may download it while it is ready; everyone else gets
    a 404 (not a 403: whether an export exists is nobody else's business)."""
    try:
        export = Export.objects.get(pk=int(pk), status=ExportStatus.READY)
    except (Export.DoesNotExist, TypeError, ValueError):
        raise Http404("No such export.") from None
    if export.member_id != member.pk and not member.is_admin:
        raise Http404("No such export.")
    if not export.file_path or not (exports_dir() / export.file_path).is_file():
        raise Http404("The export's file is gone.")
    return export
