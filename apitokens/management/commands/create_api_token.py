from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apitokens.services import api_token_create
from members.models import Member


class Command(BaseCommand):
    help = "Create an API token for a member and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--member", required=True, help="The member's e-mail address")
        parser.add_argument("--name", required=True, help="What the token is for")

    def handle(self, *args, member: str, name: str, **options):
        owner = Member.objects.filter(email__iexact=member.strip()).first()
        if owner is None:
            raise CommandError(f"No member with e-mail {member!r}.")
        if not owner.is_active:
            raise CommandError(f"Member {owner.email} is deactivated.")
        if not name.strip():
            raise CommandError("--name must not be empty.")
        token, plaintext = api_token_create(member=owner, name=name)
        self.stderr.write(
            f"Token {token.prefix}… for {owner.email} ({owner.get_role_display()}); shown once:"
        )
        self.stdout.write(plaintext)
