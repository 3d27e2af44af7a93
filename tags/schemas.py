"""The shapes the tag endpoints accept and answer."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

# A BIGINT primary key: a larger number in a path or body can name no tag, and would make
# PostgreSQL refuse the query instead of answering "not found".
TAG_ID_MAX = 2**63 - 1


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagIn(_In):
    name: str = Field(max_length=100)


class TagMergeIn(_In):
    into: int = Field(ge=1, le=TAG_ID_MAX, description="The id of the tag to merge into.")


class TagOut(Schema):
    id: int
    name: str
    customers: int = Field(description="How many customers have the tag.")
    created_at: datetime


class TagListOut(Schema):
    tags: list[TagOut]


class TagMergeOut(Schema):
    tag: TagOut
    moved: int = Field(description="Assignments moved onto the tag merged into.")
