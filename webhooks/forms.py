"""Input forms for the webhook pages. They collect and type the input; the rules (the SSRF
check, allowed events and fields) live in webhooks/services.py, whose errors come back on the
matching inputs."""

from __future__ import annotations

from django import forms

from donotcontact.models import Channel
from segments.models import Segment
from webhooks.models import MAX_BATCH_SIZE, SUBSCRIBABLE, Endpoint, EventType
from webhooks.payload import profile_field_choices
from webhooks.services import EndpointData


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.TextInput(
            attrs={"inputmode": "url", "placeholder": "https://hooks.example.com/workbench"}
        ),
        help_text="Must be reachable on the public internet; private and internal addresses "
        "are refused.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=[(e.value, e.label) for e in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        initial=[e.value for e in SUBSCRIBABLE],
    )
    all_segments = forms.TypedChoiceField(
        label="Segments",
        choices=[("1", "All segments"), ("0", "Only the segments chosen below")],
        coerce=lambda v: v == "1",
        initial="1",
        widget=forms.RadioSelect,
    )
    segments = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    profile_fields = forms.MultipleChoiceField(
        label="Profile fields",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Added to each item; the user ID is always sent.",
    )
    batch_size = forms.IntegerField(
        min_value=1,
        max_value=MAX_BATCH_SIZE,
        initial=1,
        help_text=f"Items per request, 1 to {MAX_BATCH_SIZE}. 1 sends each transition on its own.",
    )

    def __init__(self, *args, endpoint: Endpoint | None = None, **kwargs) -> None:
        if endpoint is not None:
            kwargs["initial"] = {
                "url": endpoint.url,
                "description": endpoint.description,
                "events": endpoint.events,
                "all_segments": "1" if endpoint.all_segments else "0",
                "segments": [str(pk) for pk in endpoint.segment_ids],
                "profile_fields": endpoint.profile_fields,
                "batch_size": endpoint.batch_size,
            }
        super().__init__(*args, **kwargs)
        self.fields["segments"].choices = [
            (str(pk), name) for pk, name in Segment.objects.values_list("pk", "name")
        ]
        self.fields["profile_fields"].choices = profile_field_choices()

    def data_for_service(self) -> EndpointData:
        d = self.cleaned_data
        return EndpointData(
            url=d["url"],
            description=d["description"],
            events=d["events"],
            all_segments=d["all_segments"],
            segment_ids=[int(pk) for pk in d["segments"]],
            profile_fields=d["profile_fields"],
            batch_size=d["batch_size"],
        )


class ReplayRangeForm(forms.Form):
    """Times in the member's zone, e.g. 2026-11-23 14:00."""

    start = forms.DateTimeField(
        label="From", widget=forms.TextInput(attrs={"placeholder": "2026-11-23 14:00"})
    )
    end = forms.DateTimeField(
        label="To", widget=forms.TextInput(attrs={"placeholder": "2026-11-23 15:00"})
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise forms.ValidationError("The start must be before the end.")
        return data


class HandoverForm(forms.Form):
    endpoint = forms.ModelChoiceField(queryset=Endpoint.objects.none(), empty_label=None)
    exclude_channel = forms.ChoiceField(
        label="Leave out customers on the Do Not Contact list for",
        required=False,
        choices=[("", "— nobody left out —"), *Channel.choices],
    )

    def __init__(self, *args, endpoints, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = endpoints


EVENT_LABELS = dict(EventType.choices)
