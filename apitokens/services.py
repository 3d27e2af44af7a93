from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apitokens.models import ApiToken
from apitokens.tokens import token_generate, token_hash
from members.models import Member

# last_used_at is written at most this often per token, so API traffic does not turn every
# request into an UPDATE of the same row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(
    *, member: Member, name: str, created_by: Member | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``member``; returns it with the plaintext, which is never stored."""
    plaintext, prefix = token_generate()
    token = ApiToken.objects.create(
        member=member,
        name=name.strip(),
        prefix=prefix,
        token_hash=token_hash(plaintext),
        created_by=created_by,
    )
    return token, plaintext


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(plaintext: str) -> ApiToken | None:
    """The active token with an active member for this plaintext, or None."""
    token = (
        ApiToken.objects.select_related("member")
        .filter(token_hash=token_hash(plaintext), revoked_at__isnull=True, member__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
