from __future__ import annotations

import json

import pytest

from activity.services import Actor
from apitokens.services import api_token_create
from members.roles import Role

_ROLE_FIXTURES = {Role.ADMIN: "admin", Role.MARKETER: "marketer", Role.VIEWER: "viewer"}


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


class Api:
    """Calls the API as a role (Marketer unless told): api("post", path, body, role=...).
    Members and tokens are made on first use: each one costs a password hash."""

    def __init__(self, client, request) -> None:
        self.client, self.request, self.tokens = client, request, {}

    def token(self, role=Role.MARKETER):
        if role not in self.tokens:
            member = self.request.getfixturevalue(_ROLE_FIXTURES[role])
            self.tokens[role] = api_token_create(member=member, name=f"{role} token")
        return self.tokens[role]

    def __call__(self, method, path, body=None, *, role=Role.MARKETER, raw=None, **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        if method == "get":
            return self.client.get(f"/api/v1{path}", body, **bearer(self.token(role)[1]), **extra)
        return getattr(self.client, method)(
            f"/api/v1{path}",
            data,
            content_type="application/json",
            **bearer(self.token(role)[1]),
            **extra,
        )


@pytest.fixture
def api(client, request):
    return Api(client, request)


@pytest.fixture
def actor():
    return Actor.system("tests")
