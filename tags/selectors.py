"""Tag reads for the Configuration screen."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404

from tags.models import CustomerTag, Tag

LIST_LIMIT = 500  # a longer list is for searching, not scrolling


def tags_named(names) -> QuerySet[Tag]:
    """The tags with these names, matched as names are stored: case-insensitive, inner
    whitespace collapsed (see tags.services.tag_name_clean)."""
    wanted = {" ".join(str(n).split()).lower() for n in names}
    return Tag.objects.alias(lname=Lower("name")).filter(lname__in=wanted)


def tags_with_counts(q: str = "") -> QuerySet[Tag]:
    """Tags by name (case-insensitive), each with ``customers``: how many customers have it."""
    qs = Tag.objects.annotate(customers=Count("customer_tags")).order_by(Lower("name"), "pk")
    q = q.strip()
    if q:
        qs = qs.filter(name__icontains=q)
    return qs


@dataclass
class TagList:
    tags: list[Tag]
    total: int
    truncated: bool


def tag_list(q: str = "") -> TagList:
    qs = tags_with_counts(q)
    tags = list(qs[: LIST_LIMIT + 1])
    truncated = len(tags) > LIST_LIMIT
    return TagList(tags[:LIST_LIMIT], qs.count() if truncated else len(tags), truncated)


def tag_get(pk: int) -> Tag:
    return get_object_or_404(Tag, pk=pk)


def tag_customer_count(tag: Tag) -> int:
    return CustomerTag.objects.filter(tag=tag).count()


def tag_merge_targets(source: Tag) -> QuerySet[Tag]:
    return Tag.objects.exclude(pk=source.pk).order_by(Lower("name"), "pk")
