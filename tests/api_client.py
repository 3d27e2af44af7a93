"""Calling the REST API in tests as a member of a given role (the ``api`` fixture)."""

from __future__ import annotations

import json

from apitokens.services import api_token_create
from members.roles import Role

_ROLE_FIXTURES = {Role.ADMIN: "admin", Role.MARKETER: "marketer", Role.VIEWER: "viewer"}


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


class Api:
    """Calls the API as a role (Marketer unless told): api("put", path, body, role=...); a GET
    sends ``body`` as query parameters, ``raw`` sends a body as it is. Members and tokens are
    made on first use: each one costs a password hash."""

    def __init__(self, client, request) -> None:
        self.client, self.request, self.tokens = client, request, {}

    def token(self, role=Role.MARKETER):
        if role not in self.tokens:
            member = self.request.getfixturevalue(_ROLE_FIXTURES[role])
            self.tokens[role] = api_token_create(member=member, name=f"{role} token")
        return self.tokens[role]

    def __call__(self, method, path, body=None, *, role=Role.MARKETER, raw=None, **extra):
        if method == "get" and raw is None:
            return self.client.get(f"/api/v1{path}", body, **bearer(self.token(role)[1]), **extra)
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return getattr(self.client, method)(
            f"/api/v1{path}",
            data,
            content_type="application/json",
            **bearer(self.token(role)[1]),
            **extra,
        )
