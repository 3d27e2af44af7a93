from __future__ import annotations

from django import forms

from members.models import Member


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Member) -> str:
        return f"{obj.name} <{obj.email}>" if obj.name else obj.email


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “CRM sync”.")
    member = MemberChoiceField(
        queryset=Member.objects.filter(is_active=True),
        help_text="The token acts with this member's role.",
    )
