"""Input for the tag screens; the rules (unique names, merging) live in tags/services.py."""

from __future__ import annotations

from django import forms

from tags.models import Tag
from tags.services import TAG_NAME_MAX


class TagNameForm(forms.Form):
    name = forms.CharField(max_length=TAG_NAME_MAX)


class TagMergeForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=Tag.objects.none(),
        label="Merge into",
        empty_label="Choose a tag…",
        error_messages={"invalid_choice": "Choose one of the other tags."},
    )

    def __init__(self, *args, targets, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets
