from __future__ import annotations

import zoneinfo

from django import forms

from members.models import Member, timezone_choices
from members.roles import Role


class LoginForm(forms.Form):
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class MemberCreateForm(forms.Form):
    email = forms.EmailField()
    name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER)


class MemberUpdateForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = ["name", "role", "is_active"]
        labels = {"is_active": "Active (can sign in)"}


class ProfileForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=timezone_choices)

    class Meta:
        model = Member
        fields = ["name", "timezone"]

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"]
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError("Not a known IANA timezone.") from exc
        return value
