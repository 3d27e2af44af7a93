"""Recording changes. Every service that changes customers, custom fields or tags takes an
``Actor`` and writes through ``activity_record`` in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from activity.models import Activity
from tags.models import Source

if TYPE_CHECKING:
    from apitokens.models import ApiToken
    from members.models import Member


@dataclass(frozen=True)
class Actor:
    """Who made a change and through what."""

    source: str
    member: Member | None = None
    token: ApiToken | None = None
    label_override: str = ""

    @property
    def label(self) -> str:
        if self.label_override:
            return self.label_override
        if self.token is not None:
            return f"API token {self.token.name} ({self.token.prefix}…)"
        if self.member is not None:
            return self.member.email
        return Source(self.source).label

    @classmethod
    def for_request(cls, request) -> Actor:
        token = getattr(request, "api_token", None)
        if token is not None:
            return cls(Source.API, member=token.member, token=token)
        return cls(Source.UI, member=request.user)

    @classmethod
    def system(cls, label: str = "") -> Actor:
        return cls(Source.SYSTEM, label_override=label)


def activity_record(
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: int | None = None,
    target_label: str = "",
    fields: Sequence[str] = (),
    changes: dict[str, Any] | None = None,
    count: int = 1,
) -> Activity:
    return Activity.objects.create(
        member=actor.member,
        token=actor.token,
        actor_label=actor.label[:255],
        source=actor.source,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label[:255],
        fields=list(fields),
        changes=changes or {},
        count=count,
    )


def activity_forget_customers(customer_ids: Iterable[int]) -> None:
    """Erasure: keep the log entries but drop the user ID they were labelled with."""
    Activity.objects.filter(target_type="customer", target_id__in=list(customer_ids)).update(
        target_label=""
    )
