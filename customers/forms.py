"""Input forms for the customer screens. They only collect text; the rules live in
customers/profile.py (``profile_clean``), whose errors are put back on the matching inputs."""

from __future__ import annotations

from django import forms
from django.http import QueryDict

from customers.custom_fields import CustomFieldSpec
from customers.models import Customer, CustomFieldType, UserType
from customers.profile import STANDARD_FIELDS, USER_ID_MAX, FieldError

MAX_SELECTED_IDS = 1000


def _custom_initial(spec: CustomFieldSpec, value) -> str:
    if value is None:
        return ""
    if spec.type == CustomFieldType.BOOLEAN:
        return "true" if value else "false"
    if spec.type == CustomFieldType.DATE and str(value).endswith("T00:00:00Z"):
        return str(value)[:10]
    return str(value)


def _custom_input(spec: CustomFieldSpec) -> forms.Field:
    options = {"required": False, "label": spec.label}
    if spec.type == CustomFieldType.BOOLEAN:
        choices = [("", "—"), ("true", "Yes"), ("false", "No")]
        return forms.ChoiceField(choices=choices, **options)
    attrs = {
        CustomFieldType.NUMBER: {"inputmode": "decimal", "placeholder": "e.g. 42.5"},
        CustomFieldType.DATE: {"placeholder": "YYYY-MM-DD or ISO-8601 time"},
        CustomFieldType.TEXT: {"placeholder": "one value, or several separated by commas"},
    }[spec.type]
    return forms.CharField(widget=forms.TextInput(attrs=attrs), **options)


class CustomerForm(forms.Form):
    """Profile and custom fields. On create it asks for the user ID as well."""

    def __init__(
        self,
        *args,
        custom_fields: dict[str, CustomFieldSpec],
        customer: Customer | None = None,
        **kwargs,
    ) -> None:
        initial = {}
        if customer is not None:
            initial = {name: getattr(customer, name) for name in STANDARD_FIELDS}
            for name, spec in custom_fields.items():
                initial[f"custom.{name}"] = _custom_initial(spec, customer.custom.get(name))
        super().__init__(*args, initial=initial, **kwargs)
        self.creating = customer is None
        self.custom_fields = custom_fields
        if self.creating:
            self.fields["user_id"] = forms.CharField(
                label="User ID", max_length=USER_ID_MAX, help_text="Required; it never changes."
            )
        for name, spec in STANDARD_FIELDS.items():
            if name == "user_type":
                self.fields[name] = forms.ChoiceField(
                    label=spec.label,
                    choices=UserType.choices,
                    initial=UserType.LIVE,
                    widget=forms.RadioSelect,
                    help_text="Test customers are how you try things safely.",
                )
            else:
                self.fields[name] = forms.CharField(label=spec.label, required=False, strip=False)
        self.fields["email"].widget.input_type = "email"
        self.fields["phone"].widget.attrs["placeholder"] = "+44 20 7946 0958"
        self.fields["timezone"].widget.attrs.update(
            {"list": "timezones", "placeholder": "Europe/Paris"}
        )
        for name, spec in custom_fields.items():
            field = self.fields[f"custom.{name}"] = _custom_input(spec)
            field.widget.attrs["id"] = f"id_custom_{name}"  # no dot: ids stay CSS-selectable

    def profile_data(self) -> dict:
        """What to hand to profile_clean: on create what was filled in, on edit only what the
        member changed (so an untouched value is never rewritten)."""
        data: dict = {}
        custom: dict = {}
        for name in self.fields if self.creating else self.changed_data:
            value = self.cleaned_data.get(name, "")
            if name == "user_id" or (self.creating and value == ""):
                continue
            if name.startswith("custom."):
                custom[name.removeprefix("custom.")] = value
            else:
                data[name] = value
        if custom:
            data["custom"] = custom
        return data

    def add_profile_errors(self, errors: list[FieldError]) -> None:
        for error in errors:
            self.add_error(error.field if error.field in self.fields else None, error.message)

    @property
    def standard_fields(self):
        return [self[name] for name in self.fields if not name.startswith("custom.")]

    @property
    def custom_inputs(self):
        return [self[name] for name in self.fields if name.startswith("custom.")]


class SelectionForm(forms.Form):
    """Which customers a bulk action is for: ticked rows, or all matching a filter."""

    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    all = forms.BooleanField(required=False)
    filter = forms.CharField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # any id

    def clean(self):
        data = super().clean()
        if not data.get("all") and not data.get("ids"):
            raise forms.ValidationError("Select at least one customer.")
        if len(data.get("ids") or []) > MAX_SELECTED_IDS:
            raise forms.ValidationError(
                f"Select at most {MAX_SELECTED_IDS} customers, or all matching the filter."
            )
        return data

    def filter_params(self) -> QueryDict:
        return QueryDict(self.cleaned_data.get("filter") or "")
