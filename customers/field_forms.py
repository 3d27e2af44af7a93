"""Input for the custom field screens; the rules (unique labels, name generation) live in
customers/services.py."""

from __future__ import annotations

from django import forms

from customers.models import CustomFieldType


class CustomFieldCreateForm(forms.Form):
    label = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. Plan"})
    )
    type = forms.ChoiceField(choices=CustomFieldType.choices, initial=CustomFieldType.TEXT)


class CustomFieldRenameForm(forms.Form):
    label = forms.CharField(max_length=100)
