"""The shapes the segment endpoints accept and answer.

Request bodies are validated against the strict models here (``parse_as``: unknown keys and
wrong JSON types are refused); the rule tree itself is only typed as "any JSON" because
segments/rules.py validates it and names the node of each problem, which a generic schema
error could not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from segments.rules import MAX_CONDITIONS
from segments.selectors import SEGMENT_SORTS

# A BIGINT primary key: a larger number in a path names no segment.
SEGMENT_ID_MAX = 2**63 - 1
MEMBERS_MAX = 500

RULES_DESCRIPTION = (
    'The rule tree: a group `{"type": "group", "match": "all" | "any", "negate": false, '
    '"children": [...]}` whose children are groups or conditions of type `attribute`, '
    f"`event`, `tag`, `segment` or `do_not_contact`; at most {MAX_CONDITIONS} conditions. "
    'A Do Not Contact condition reads `{"type": "do_not_contact", "operator": "is" | "is_not", '
    '"channel": "email" | "sms" | "whatsapp" | "viber" | "rcs" | "voice" | "push" | null, '
    '"sender": "...", "account": "..."}`: `channel` null means on the list for some channel; '
    "`sender` and `account` (optional) scope it to messages from that sender or account."
)
TIMEZONE_DESCRIPTION = (
    "IANA zone in which relative dates are read and date-times without an offset are "
    "interpreted; default: the token member's zone."
)
SORT_DESCRIPTION = "One of: " + ", ".join(f"`{key}`" for key in SEGMENT_SORTS) + "."


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentIn(_In):
    name: StrictStr
    description: StrictStr = ""
    rules: Any = Field(description=RULES_DESCRIPTION)
    timezone: StrictStr | None = Field(None, description=TIMEZONE_DESCRIPTION)


class SegmentPatchIn(_In):
    """Only the keys given change; ``null`` is refused (an empty description clears it)."""

    name: StrictStr | None = None
    description: StrictStr | None = None
    rules: Any = Field(None, description=RULES_DESCRIPTION)
    timezone: StrictStr | None = Field(None, description=TIMEZONE_DESCRIPTION)


class PreviewIn(_In):
    rules: Any = Field(description=RULES_DESCRIPTION)
    timezone: StrictStr | None = Field(None, description=TIMEZONE_DESCRIPTION)
    reachable: StrictBool = Field(
        True,
        description="Count the reachable customers per channel too. They cost more than the "
        "count when the rules match most of the base; false answers the count alone (and "
        "`reachable: null`).",
    )


# --- Responses ----------------------------------------------------------------------------


class SegmentRefOut(Schema):
    id: int
    name: str


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    predefined: bool
    status: Literal["computing", "ready", "failed"] = Field(
        description="`computing` while a build runs after a rules change."
    )
    build_progress: int = Field(description="Percent of the running build done.")
    build_error: str
    member_count: int
    built_at: datetime | None
    rules: dict[str, Any]
    rules_version: int
    timezone: str
    time_based: bool = Field(
        description="The rules read the clock, so a scheduled sweep keeps membership current."
    )
    used_by: list[SegmentRefOut] = Field(description="The segments whose rules read this one.")
    created_at: datetime
    updated_at: datetime


class SegmentListOut(Schema):
    segments: list[SegmentOut]


class SegmentInUseOut(Schema):
    detail: str
    used_by: list[SegmentRefOut]


class MemberOut(Schema):
    id: int
    user_id: str
    name: str
    email: str
    entered_at: datetime


class MembersPageOut(Schema):
    members: list[MemberOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class SampleOut(Schema):
    id: int
    user_id: str
    name: str
    email: str


class PreviewOut(Schema):
    count: int
    estimated: bool = Field(
        description="The count ran past the time limit: it is the planner's estimate."
    )
    sample_user_ids: list[str]
    sample: list[SampleOut]
    conditions: list[int] = Field(
        description="The count after each top-level condition: entry k counts the customers "
        "matching conditions 1..k of the root group. Empty when estimated."
    )
    reachable: dict[str, int] | None = Field(
        description="Per channel (`email`, `sms`, `whatsapp`, `viber`, `rcs`, `voice`, `push`): "
        "the matching customers with an address for it whom no Do Not Contact entry suppresses "
        "(for every sender). Null when estimated or not asked for."
    )


class CustomerSegmentOut(Schema):
    id: int
    name: str
    entered_at: datetime


class CustomerSegmentsOut(Schema):
    segments: list[CustomerSegmentOut]


class ExplainOut(Schema):
    segment: SegmentRefOut
    user_id: str
    matches: bool = Field(description="Whether the rules match the customer now.")
    member: bool = Field(
        description="The stored membership, which can lag `matches` by the seconds "
        "incremental evaluation takes."
    )
    rules: dict[str, Any] = Field(
        description="The rule tree with `node` (its path) and `held` on every node, and "
        "`seen` (the value the condition read) on every condition."
    )
