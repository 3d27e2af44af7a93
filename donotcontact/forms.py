"""Input for the Do Not Contact screen. The contact rules are donotcontact/contacts.py's
(``entry_clean``), so the screen refuses exactly what the API and imports refuse."""

from __future__ import annotations

from django import forms
from django.http import QueryDict

from donotcontact.contacts import (
    ACCOUNT_MAX,
    SENDER_MAX,
    CleanEntry,
    ContactInvalid,
    account_clean,
    channel_clean,
    contact_clean,
    sender_clean,
)
from donotcontact.models import ALL_CHANNELS_LABEL, Channel
from donotcontact.services import NOTE_MAX, REASON_MAX, note_clean, reason_clean

SELECTION_MAX = 1000  # ticked boxes: a page holds 50; "all matching" covers more


class EntryForm(forms.Form):
    contact = forms.CharField(
        max_length=254,
        error_messages={"required": "Enter an e-mail address or a phone number."},
    )
    channel = forms.ChoiceField(
        choices=[("", ALL_CHANNELS_LABEL), *Channel.choices], required=False
    )
    sender = forms.CharField(max_length=SENDER_MAX, required=False)
    account = forms.CharField(max_length=ACCOUNT_MAX, required=False)
    reason = forms.CharField(max_length=REASON_MAX, required=False)
    note = forms.CharField(max_length=NOTE_MAX, required=False)

    def clean(self) -> dict:
        data = super().clean()
        if "contact" not in data:
            return data
        try:
            contact = contact_clean(data["contact"])
        except ContactInvalid as exc:
            self.add_error("contact", str(exc))
            return data
        # entry_clean's steps one by one, so each message lands on the field it is about.
        steps = (
            ("channel", lambda value: channel_clean(value, contact)),
            ("sender", sender_clean),
            ("account", account_clean),
            ("reason", reason_clean),
            ("note", note_clean),
        )
        values = {"contact": contact}
        for name, clean in steps:
            if name not in data:
                continue  # the field's own check failed and said why
            try:
                values[name] = clean(data[name])
            except ContactInvalid as exc:
                self.add_error(name, str(exc))
        if not self.errors:
            data.update(values)
            data["entry"] = CleanEntry(
                contact, values["channel"], values["sender"], values["account"]
            )
        return data


class IdsField(forms.TypedMultipleChoiceField):
    """Entry ids: any number is a valid choice; whether it exists is the queryset's business."""

    def __init__(self, **kwargs) -> None:
        super().__init__(coerce=int, **kwargs)

    def valid_value(self, value: object) -> bool:
        return str(value).isdigit()


class SelectionForm(forms.Form):
    """Ticked entries, or all entries matching the list's filter (``filter`` carries it)."""

    ids = IdsField(required=False)
    all = forms.BooleanField(required=False)
    filter = forms.CharField(required=False, max_length=4000)

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if len(ids) > SELECTION_MAX:
            raise forms.ValidationError(f"Select at most {SELECTION_MAX} entries at a time.")
        return [i for i in ids if 0 < i < 2**63]

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("all") and not data.get("ids"):
            raise forms.ValidationError("Select entries first, or tick “all matching”.")
        return data

    def filter_params(self) -> QueryDict:
        return QueryDict(self.cleaned_data.get("filter", ""))
