from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import field_validator

from members.services import profile_update

router = Router(tags=["members"])


class MeOut(Schema):
    email: str
    name: str
    role: str
    timezone: str
    token_name: str
    token_prefix: str
    token_created_at: datetime


class MeUpdate(Schema):
    name: str | None = Field(default=None, max_length=150)
    timezone: str | None = None

    model_config = {"extra": "forbid"}

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("not a known IANA timezone, e.g. Europe/Berlin") from exc
        return value


def _me(request: HttpRequest) -> MeOut:
    token = request.auth
    member = token.member
    return MeOut(
        email=member.email,
        name=member.name,
        role=member.role,
        timezone=member.timezone,
        token_name=token.name,
        token_prefix=token.prefix,
        token_created_at=token.created_at,
    )


@router.get("/me", response=MeOut, summary="The member the API token acts for")
def me(request: HttpRequest) -> MeOut:
    return _me(request)


@router.patch("/me", response=MeOut, summary="Change the token member's name or timezone")
def me_update(request: HttpRequest, payload: MeUpdate) -> MeOut:
    member = request.auth.member
    profile_update(
        member=member,
        name=payload.name if payload.name is not None else member.name,
        timezone=payload.timezone or member.timezone,
    )
    return _me(request)
