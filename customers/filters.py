"""The Customers screen's quick filters (django-filter). Dates are days in the member's time
zone; each bound is turned into the instant that day starts there."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from customers.models import COUNTRY_KEY, Customer, UserType
from customers.selectors import SORTS, customer_search
from tags.models import CustomerTag, Tag


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search")
    tag = django_filters.ModelChoiceFilter(
        queryset=Tag.objects.all(), method="filter_tag", label="Tag", empty_label="Any tag"
    )
    user_type = django_filters.ChoiceFilter(
        choices=UserType.choices, label="User type", empty_label="Live and test"
    )
    country = django_filters.CharFilter(method="filter_country", label="Country")
    created_from = django_filters.DateFilter(method="filter_from", field_name="created_at")
    created_to = django_filters.DateFilter(method="filter_to", field_name="created_at")
    last_seen_from = django_filters.DateFilter(method="filter_from", field_name="last_seen")
    last_seen_to = django_filters.DateFilter(method="filter_to", field_name="last_seen")

    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_q(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return customer_search(qs, value)

    def filter_tag(self, qs: QuerySet, name: str, value: Tag) -> QuerySet:
        return qs.filter(Exists(CustomerTag.objects.filter(customer=OuterRef("pk"), tag=value)))

    def filter_country(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # Any case matches, through the index on COUNTRY_KEY.
        return qs.alias(country_key=COUNTRY_KEY).filter(country_key=value.strip().lower())

    def filter_from(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        start = _day_start(value)
        if name == "last_seen":  # the hour too, which is indexed (Customer.last_seen_hour)
            qs = qs.filter(last_seen_hour__gte=_hour(start))
        return qs.filter(**{f"{name}__gte": start})

    def filter_to(self, qs: QuerySet, name: str, value: date) -> QuerySet:
        # "to" includes the whole day.
        end = _day_start(value + timedelta(days=1))
        if name == "last_seen":
            qs = qs.filter(last_seen_hour__lte=_hour(end))
        return qs.filter(**{f"{name}__lt": end})


def customers_filtered(params) -> tuple[CustomerFilter, QuerySet[Customer]]:
    """The filter form bound to ``params`` and the matching customers (all of them when the
    parameters are invalid; the form then carries the errors)."""
    filterset = CustomerFilter(params, queryset=Customer.objects.all())
    qs = filterset.qs if filterset.is_valid() else Customer.objects.none()
    return filterset, qs


def sort_from(params) -> str:
    sort = params.get("sort", "")
    return sort if sort in SORTS else "-created"
