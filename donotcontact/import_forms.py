"""Input of the Do Not Contact import wizard: the start row and column targets, and the
accounts. Only parsing here; the rules are in donotcontact/importing.py."""

from __future__ import annotations

from django import forms

from donotcontact.contacts import ACCOUNT_MAX

TARGET_CHOICES = [
    ("skip", "Don't import"),
    ("contact", "Contact (e-mail or phone)"),
    ("sender", "Sender"),
    ("channel", "Channel"),
]
ALL_ACCOUNTS = "__all__"  # the form value for "" (every account): an empty value can't be checked


class MappingForm(forms.Form):
    start_row = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        initial=1,
        label="Start at row",
        error_messages={"min_value": "Start at row 1 or later."},
    )

    def __init__(self, *args, columns: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        for index in range(columns):
            self.fields[f"target-{index}"] = forms.ChoiceField(
                choices=TARGET_CHOICES, required=False, initial="skip"
            )

    def clean(self) -> dict:
        cleaned = super().clean()
        mapping: dict[str, int | None] = {"contact": None, "sender": None, "channel": None}
        for index in range(self.columns):
            target = cleaned.get(f"target-{index}") or "skip"
            if target == "skip":
                continue
            if mapping[target] is not None:
                label = dict(TARGET_CHOICES)[target]
                raise forms.ValidationError(
                    f"“{label}” is chosen for columns {mapping[target] + 1} and {index + 1}; "
                    "choose it for one column only."
                )
            mapping[target] = index
        if mapping["contact"] is None:
            raise forms.ValidationError(
                "Choose the column that holds the contacts (e-mail addresses or phone numbers)."
            )
        cleaned["mapping"] = mapping
        return cleaned


class AccountsForm(forms.Form):
    account = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    new_account = forms.CharField(required=False, max_length=ACCOUNT_MAX, label="Another account")

    def __init__(self, *args, existing: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [(ALL_ACCOUNTS, "All accounts")] + [
            (a, a) for a in existing if a
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        accounts = ["" if a == ALL_ACCOUNTS else a for a in cleaned.get("account", [])]
        new = " ".join((cleaned.get("new_account") or "").split())
        if new:
            accounts.append(new)
        if not accounts:
            raise forms.ValidationError(
                "Choose at least one account, or All accounts, for the entries."
            )
        cleaned["accounts"] = accounts
        return cleaned
