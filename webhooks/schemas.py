"""API shapes for webhooks (webhooks/api.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

from webhooks.models import MAX_BATCH_SIZE


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    description: str = Field("", max_length=200)
    events: list[str] = Field(default=["segment-entered", "segment-exited"], max_length=2)
    segment_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=1000, description="Only these segments; omit for every segment."
    )
    profile_fields: list[str] = Field(default=[], max_length=100)
    batch_size: int = Field(1, ge=1, le=MAX_BATCH_SIZE)


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    enabled: bool
    events: list[str]
    segment_ids: list[int] | None
    profile_fields: list[str]
    batch_size: int
    consecutive_failures: int
    disabled_reason: str
    created_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str


class EndpointListOut(Schema):
    endpoints: list[EndpointOut]


class AttemptOut(Schema):
    number: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_snippet: str
    error: str


class DeliveryOut(Schema):
    id: int
    webhook_id: str
    event: str
    status: str
    item_count: int
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str


class DeliveryListOut(Schema):
    deliveries: list[DeliveryOut]


class TestOut(Schema):
    delivery: DeliveryOut
    attempt: AttemptOut
