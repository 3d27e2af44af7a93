"""The Do Not Contact list's filters (django-filter). Every filter takes several values, OR-ed
("channel = SMS or Viber"); filters combine with AND. The screen and GET /api/v1/do-not-contact
share this FilterSet, so they filter alike.

Stored "" means "every channel / sender / account"; a filter selects those entries with the
token ``EVERY`` ("*"), since an empty parameter is what an untouched form field sends."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from donotcontact.contacts import ContactInvalid, account_clean, contact_clean, sender_clean
from donotcontact.models import ALL_CHANNELS_LABEL, Channel, Entry, Source

EVERY = "*"
VALUES_MAX = 50  # values per filter: a longer list is a mistake, not a question
CHANNEL_CHOICES = [(EVERY, ALL_CHANNELS_LABEL), *Channel.choices]
# Characters that never occur in a normalised phone number, only in how people type one.
_PHONE_TYPING = str.maketrans("", "", " ().-/")


class ValuesField(forms.MultipleChoiceField):
    """Several free-text values (senders, accounts): any text is a valid choice."""

    def __init__(self, *args, clean_value=None, **kwargs) -> None:
        self.clean_value = clean_value
        kwargs.setdefault("choices", [])
        super().__init__(*args, **kwargs)

    def valid_value(self, value: str) -> bool:
        return True

    def clean(self, value):
        values = [v for v in super().clean(value) if v.strip()]
        if len(values) > VALUES_MAX:
            raise forms.ValidationError(f"At most {VALUES_MAX} values.")
        try:
            return [v if v == EVERY else self.clean_value(v) for v in values]
        except ContactInvalid as exc:
            raise forms.ValidationError(str(exc)) from None


class ValuesFilter(django_filters.MultipleChoiceFilter):
    field_class = ValuesField


def _every(values: list[str]) -> list[str]:
    return ["" if v == EVERY else v for v in values]


def search_prefix(q: str) -> str:
    """What a typed search looks for in the stored contacts: an e-mail prefix lower-cased, a
    phone prefix in E.164 spelling ("0044 20", "(+44) 20-79" and "4420" all become "+4420")."""
    q = q.strip()
    if not q or "@" in q or any(ch.isalpha() for ch in q):
        return q.lower()
    digits = q.translate(_PHONE_TYPING)
    if digits.startswith("00"):
        digits = digits[2:]
    digits = digits.lstrip("+")
    return "+" + digits if digits.isdigit() else q.lower()


def prefix_q(prefix: str) -> Q:
    # A range on the contact is what the unique index (contact, ...) serves; LIKE 'x%' is not
    # under the database's C.UTF-8 collation. The database orders by code point, so every
    # contact starting with the prefix lies in [prefix, prefix + U+10FFFF).
    return Q(contact__gte=prefix, contact__lt=prefix + "\U0010ffff", contact__startswith=prefix)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class EntryFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search", max_length=254)
    contact = django_filters.CharFilter(method="filter_contact", label="Contact", max_length=254)
    channel = django_filters.MultipleChoiceFilter(
        choices=CHANNEL_CHOICES, method="filter_in", label="Channel"
    )
    source = django_filters.MultipleChoiceFilter(
        choices=Source.choices, method="filter_in", label="Source"
    )
    sender = ValuesFilter(method="filter_in", label="Sender", clean_value=sender_clean)
    account = ValuesFilter(method="filter_in", label="Account", clean_value=account_clean)
    added_from = django_filters.DateFilter(method="filter_from", label="Added from")
    added_to = django_filters.DateFilter(method="filter_to", label="Added to")

    class Meta:
        model = Entry
        fields: list[str] = []

    def filter_q(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        prefix = search_prefix(value)
        return qs.filter(prefix_q(prefix)) if prefix else qs

    def filter_contact(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value.strip():
            return qs
        try:
            return qs.filter(contact=contact_clean(value))
        except ContactInvalid:
            # Not a contact anyone could have stored: nothing matches.
            return qs.none()

    def filter_in(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        return qs.filter(**{f"{name}__in": _every(value)}) if value else qs

    def filter_from(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        return qs.filter(added_at__gte=_day_start(value))

    def filter_to(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        # "to" includes the whole day.
        return qs.filter(added_at__lt=_day_start(value + timedelta(days=1)))


def entries_filtered(params) -> tuple[EntryFilter, QuerySet[Entry]]:
    """The filter bound to ``params`` and the matching entries (none when the parameters are
    invalid; the filter's form then carries the errors)."""
    filterset = EntryFilter(params, queryset=Entry.objects.all())
    qs = filterset.qs if filterset.is_valid() else Entry.objects.none()
    return filterset, qs
