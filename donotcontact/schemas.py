"""The shapes the Do Not Contact endpoints accept and answer. Entry bodies are validated by
``contacts.entry_clean`` (the rules the screen and imports use); the request models here
describe them for the OpenAPI document (``body_doc``) and check their shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

from donotcontact.contacts import ACCOUNT_MAX, SENDER_MAX
from donotcontact.models import Source
from donotcontact.services import NOTE_MAX, REASON_MAX

ADD_MAX = 1000
ENTRY_ID_MAX = 2**63 - 1

SourceName = Literal["end_user", "campaign", "url_opt_out", "manual", "import", "api"]
assert set(SourceName.__args__) == set(Source.values)  # noqa: S101 - kept in step with the model


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: str = Field(
        max_length=254,
        description="An e-mail address or a phone number in international format "
        "(+441234567890, 0044 1234 567890 and 441234567890 are the same number).",
    )
    channel: str = Field(
        "",
        max_length=32,
        description='email, sms, whatsapp, viber, rcs, voice or push (labels such as "WhatsApp" '
        "work too); empty for every channel. An e-mail address is always Email.",
    )
    sender: str = Field("", max_length=SENDER_MAX, description="Empty for every sender.")
    account: str = Field("", max_length=ACCOUNT_MAX, description="Empty for every account.")
    source: SourceName = Field("api", description="How the opt-out was received.")
    reason: str = Field("", max_length=REASON_MAX)
    note: str = Field("", max_length=NOTE_MAX)


class EntriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[EntryIn] = Field(max_length=ADD_MAX)


class EntryOut(Schema):
    id: int
    contact: str
    channel: str = Field(description='"" means every channel.')
    sender: str = Field(description='"" means every sender.')
    account: str = Field(description='"" means every account.')
    source: str
    reason: str
    note: str
    added_at: datetime
    added_by: str | None = Field(description="The member's e-mail, when a member added it.")


class EntryPageOut(Schema):
    entries: list[EntryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class FieldErrorOut(Schema):
    field: str
    message: str


class AddResultOut(Schema):
    index: int
    contact: str | None = Field(description="Normalised, when the contact is valid.")
    status: Literal["added", "already_present", "rejected"]
    entry: EntryOut | None = None
    errors: list[FieldErrorOut] = []


class AddOut(Schema):
    results: list[AddResultOut]
    added: int
    already_present: int
    rejected: int


class CheckOut(Schema):
    contact: str = Field(description="The contact as stored: lower-cased e-mail or E.164.")
    channel: str | None
    sender: str
    account: str
    suppressed: bool
    entries: list[EntryOut] = Field(description="The entries that suppress it here.")
