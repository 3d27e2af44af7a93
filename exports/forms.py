"""The export form: a format and the columns, in the order the member ticked them."""

from __future__ import annotations

from django import forms

from customers.export import ExportColumn
from donotcontact.models import Channel
from exports.models import ExportFormat


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=ExportFormat.choices, initial=ExportFormat.CSV, widget=forms.RadioSelect
    )
    columns = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one column."},
    )
    leave_out = forms.ChoiceField(
        label="Leave out customers on the Do Not Contact list for",
        choices=[("", "no channel: export everyone"), *Channel.choices],
        required=False,
        initial="",
        error_messages={"invalid_choice": "Choose a channel from the list."},
    )

    def __init__(self, *args, available: dict[str, ExportColumn], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.available = available
        self.fields["columns"].choices = [(c.key, c.label) for c in available.values()]

    def clean_columns(self) -> list[str]:
        # Repeated keys once each, in the order they came.
        return list(dict.fromkeys(self.cleaned_data["columns"]))
