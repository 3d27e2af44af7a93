from __future__ import annotations

import pytest

from activity.services import Actor
from donotcontact.contacts import entry_clean
from donotcontact.models import Entry, Source
from donotcontact.services import entries_add


@pytest.fixture
def system_actor():
    return Actor.system("tests")


@pytest.fixture
def add(db, system_actor):
    """add("a@x.com", "email", sender=..., source=...) -> the Entry (new or existing)."""

    def _add(contact, channel="", sender="", account="", *, source=Source.MANUAL, **extra):
        entry = entry_clean(contact, channel, sender, account)
        entries_add(entries=[entry], source=source, actor=system_actor, **extra)
        return Entry.objects.get(
            contact=entry.contact, channel=entry.channel, sender=entry.sender, account=entry.account
        )

    return _add
