from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

router = Router(tags=["members"])


class MeOut(Schema):
    email: str
    name: str
    role: str
    timezone: str
    token_name: str
    token_prefix: str
    token_created_at: datetime


@router.get("/me", response=MeOut, summary="The member the API token acts for")
def me(request: HttpRequest) -> MeOut:
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
