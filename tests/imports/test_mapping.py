"""imports/mapping.py: which target each header suggests, and the "never twice" rule."""

from __future__ import annotations

import pytest

from customers.custom_fields import CustomFieldSpec
from customers.profile import STANDARD_FIELDS
from imports.mapping import header_normalise, mapping_suggest, target_suggest

CUSTOM = {
    "plan": CustomFieldSpec("plan", "text", "Subscription plan"),
    "signup_date": CustomFieldSpec("signup_date", "date", "Signed up"),
    "mobile_app": CustomFieldSpec("mobile_app", "boolean", "Mobile"),
    "lifetime_value": CustomFieldSpec("lifetime_value", "number", ""),
}


@pytest.mark.parametrize(
    ("header", "target"),
    [
        # the user ID
        ("id", "id"),
        ("ID", "id"),
        ("user_id", "id"),
        ("User ID", "id"),
        ("userid", "id"),
        ("Customer ID", "id"),
        ("customer_id", "id"),
        ("customer-id", "id"),
        ("user.id", "id"),
        ("\ufeffid", "id"),
        ("  Id  ", "id"),
        ("external user id", "external_id"),
        # standard fields
        ("Email", "email"),
        ("Email Address", "email"),
        ("E-mail", "email"),
        ("e-mail address", "email"),
        ("EMAIL_ADDRESS", "email"),
        ("mail", "email"),
        ("First Name", "first_name"),
        ("firstname", "first_name"),
        ("first_name", "first_name"),
        ("given name", "first_name"),
        ("Last Name", "last_name"),
        ("surname", "last_name"),
        ("family name", "last_name"),
        ("Full name", "name"),
        ("Name", "name"),
        ("Phone", "phone"),
        ("Phone Number", "phone"),
        ("Mobile", "phone"),
        ("Mobile number", "phone"),
        ("Telephone", "phone"),
        ("msisdn", "phone"),
        ("City", "city"),
        ("Town", "city"),
        ("Country", "country"),
        ("Country code", "country"),
        ("Region", "region"),
        ("State", "region"),
        ("Province", "region"),
        ("Time zone", "timezone"),
        ("timezone", "timezone"),
        ("tz", "timezone"),
        ("External ID", "external_id"),
        ("external_id", "external_id"),
        ("User type", "user_type"),
        ("user_type", "user_type"),
        # anything else
        ("Favourite colour", "skip"),
        ("tags", "skip"),
        ("created_at", "skip"),
        ("first_seen", "skip"),
        ("", "skip"),
        ("-", "skip"),
    ],
)
def test_target_suggest_without_custom_fields(header, target):
    assert target_suggest(header, {}) == target


@pytest.mark.parametrize(
    ("header", "target"),
    [
        # the export's column form
        ("custom.plan", "custom.plan"),
        ("custom.signup_date", "custom.signup_date"),
        ("Custom.Plan", "custom.plan"),
        ("custom.unknown", "skip"),
        ("custom.", "skip"),
        # a custom field's name or label
        ("plan", "custom.plan"),
        ("Subscription plan", "custom.plan"),
        ("subscription-plan", "custom.plan"),
        ("Signed up", "custom.signup_date"),
        ("signup date", "custom.signup_date"),
        ("Lifetime value", "custom.lifetime_value"),
        # a custom field's label is meant more exactly than a synonym of a standard field
        ("Mobile", "custom.mobile_app"),
        # but never more than a standard field's own name or label, or the user ID
        ("Phone", "phone"),
        ("email", "email"),
        ("id", "id"),
    ],
)
def test_target_suggest_with_custom_fields(header, target):
    assert target_suggest(header, CUSTOM) == target


def test_every_standard_field_matches_its_name_and_label():
    for name, field in STANDARD_FIELDS.items():
        assert target_suggest(name, {}) == name
        assert target_suggest(field.label, {}) == name


def test_a_custom_name_wins_over_another_custom_label():
    custom = {
        "tier": CustomFieldSpec("tier", "text", "Plan"),
        "plan": CustomFieldSpec("plan", "text", "Plan name"),
    }
    assert target_suggest("plan", custom) == "custom.plan"
    assert target_suggest("Plan name", custom) == "custom.plan"


@pytest.mark.parametrize(
    ("header", "normal"),
    [(" E-mail_Address ", "emailaddress"), ("\ufeffUser.ID", "userid"), ("a  b\tc", "abc")],
)
def test_header_normalise(header, normal):
    assert header_normalise(header) == normal


@pytest.mark.parametrize(
    ("headers", "mapping"),
    [
        (["id", "email", "name"], ["id", "email", "name"]),
        # first wins; later columns with the same target are skipped
        (["User ID", "customer_id", "id"], ["id", "skip", "skip"]),
        (["Email", "E-mail address", "Phone", "Telephone"], ["email", "skip", "phone", "skip"]),
        (["State", "Region"], ["region", "skip"]),
        (["plan", "custom.plan"], ["custom.plan", "skip"]),
        # "skip" can repeat
        (["notes", "comments", "id"], ["skip", "skip", "id"]),
        ([], []),
    ],
)
def test_mapping_suggest_never_twice(headers, mapping):
    assert mapping_suggest(headers, CUSTOM) == mapping


def test_mapping_suggest_reads_an_export_header_back():
    from customers.export import export_header

    headers = export_header(CUSTOM)
    mapping = mapping_suggest(headers, CUSTOM)
    assert mapping[: 1 + len(STANDARD_FIELDS) + len(CUSTOM)] == [
        "id",
        *STANDARD_FIELDS,
        *(f"custom.{name}" for name in CUSTOM),
    ]
    assert set(mapping[1 + len(STANDARD_FIELDS) + len(CUSTOM) :]) == {"skip"}
