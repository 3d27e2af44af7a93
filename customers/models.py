from __future__ import annotations

from django.db import models
from django.db.models.functions import Collate, Lower, Now, NullIf, Upper
from django.utils.timezone import now

NAME_KEY = Collate(Upper("name"), "C")
# Country compared as segments compare text (segments/fields.py, compiler.py): case-insensitive,
# empty meaning no value. The index is on exactly this expression, so the segment preview and
# the customers filter start from it.
COUNTRY_KEY = Lower(NullIf("country", models.Value("")))
# last_seen's hour in UTC: timezone('UTC', date_trunc('hour', timezone('UTC', last_seen))),
# which PostgreSQL accepts as immutable (date_trunc with a zone argument is only from 16 on).
_UTC = models.Value("UTC")
LAST_SEEN_HOUR = models.Func(
    _UTC,
    models.Func(
        models.Value("hour"),
        models.Func(_UTC, models.F("last_seen"), function="timezone"),
        function="date_trunc",
    ),
    function="timezone",
    output_field=models.DateTimeField(),
)


class UserType(models.TextChoices):
    LIVE = "live", "Live"
    TEST = "test", "Test"


class CustomFieldType(models.TextChoices):
    TEXT = "text", "Text"
    DATE = "date", "Date"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Yes / no"


def _text(max_length: int = 255, **kwargs) -> models.CharField:
    # db_default so set-based SQL (upserts, COPY loads) may leave columns out.
    return models.CharField(max_length=max_length, blank=True, default="", db_default="", **kwargs)


class Customer(models.Model):
    """A customer profile. The user ID is the only required field; it never changes once set,
    so an ID always names the same profile. Field rules live in customers/profile.py."""

    user_id = models.CharField(max_length=255, unique=True)
    name = _text()
    first_name = _text()
    last_name = _text()
    email = _text(254)  # trimmed, lower-cased
    phone = _text(16)  # E.164
    city = _text()
    country = _text(100)
    region = _text()
    timezone = _text(64)  # IANA name
    external_id = _text()
    user_type = models.CharField(
        max_length=4, choices=UserType.choices, default=UserType.LIVE, db_default=UserType.LIVE
    )
    # Custom field values by field name, stored typed (see customers/custom_fields.py). No
    # blanket GIN index: segments add per-field expression indexes where they need them.
    custom = models.JSONField(default=dict, db_default={}, blank=True)
    # Up to five {"token": ..., "platform": "ios" | "android"}.
    device_tokens = models.JSONField(default=list, db_default=[], blank=True)

    # Analytics fields: filled by event ingestion, read-only everywhere else.
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    # Kept by PostgreSQL. The "last seen" sort and filters go through an index on this column
    # rather than on last_seen: ingesting events moves last_seen forward all the time, and an
    # index on it made every such update a new row version in all of the table's indexes. The
    # hour changes at most once an hour, so the other updates are HOT (heap-only: the row is
    # rewritten in place on its page, which the table's fillfactor keeps room on).
    last_seen_hour = models.GeneratedField(
        expression=LAST_SEEN_HOUR, output_field=models.DateTimeField(null=True), db_persist=True
    )
    last_seen_ios = models.DateTimeField(null=True, blank=True)
    last_seen_android = models.DateTimeField(null=True, blank=True)
    last_seen_web = models.DateTimeField(null=True, blank=True)
    last_android_sdk_version = _text(64)
    last_android_device = _text()
    last_android_os_version = _text(64)
    last_android_device_name = _text()
    last_ios_sdk_version = _text(64)
    last_ios_device = _text()
    last_ios_os_version = _text(64)
    last_ios_device_name = _text()
    last_browser = _text(1024)
    last_browser_name = _text(64)
    last_browser_version = _text(64)
    last_browser_os = _text(64)
    last_browser_os_version = _text(64)
    last_web_sdk_version = _text(64)

    # Rows are numbered in creation order, so "sort by created" pages on the primary key.
    created_at = models.DateTimeField(default=now, db_default=Now())
    updated_at = models.DateTimeField(default=now, db_default=Now())

    class Meta:
        indexes = [
            # Sorting by name pages on (upper(name), id) and quick search matches a name prefix;
            # both use this index. It is in the "C" collation because PostgreSQL only serves
            # LIKE 'prefix%' from an index in that collation, whatever the database's default.
            models.Index(NAME_KEY, "id", name="customer_name_sort_idx"),
            # "Last seen" sorts read the hours in order and sort each hour's rows (an
            # incremental sort); see last_seen_hour.
            models.Index(fields=["last_seen_hour"], name="customer_last_seen_hour_idx"),
            models.Index(COUNTRY_KEY, name="customer_country_ci_idx"),
            # One index per looked-up field; pattern_ops also serves equality, so the e-mail
            # index answers both exact lookups and quick search by prefix.
            models.Index(
                fields=["email"], name="customer_email_idx", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(fields=["phone"], name="customer_phone_idx"),
            models.Index(fields=["external_id"], name="customer_external_id_idx"),
        ]

    def __str__(self) -> str:
        return self.user_id

    @property
    def display_name(self) -> str:
        return (
            self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or self.user_id
        )


class CustomField(models.Model):
    """A custom profile field. The name is generated from the first label and never changes,
    because API clients, imports and segment rules refer to it."""

    name = models.SlugField(max_length=63, unique=True)
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=8, choices=CustomFieldType.choices)
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deleting hides the field at once; a background job then removes its values and the row.
    # Until then the name stays taken so a new field cannot inherit stale values.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=[t.value for t in CustomFieldType]),
                name="custom_field_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def key(self) -> str:
        return f"custom.{self.name}"
