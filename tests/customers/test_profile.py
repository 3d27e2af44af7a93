from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.custom_fields import CustomFieldSpec, coerce_custom_value, custom_field_name_for
from customers.profile import (
    MAX_CUSTOM_KEYS,
    ProfileInvalid,
    clean_phone,
    clean_user_id,
    profile_clean,
)

SPECS = {
    "plan": CustomFieldSpec("plan", "text"),
    "score": CustomFieldSpec("score", "number"),
    "since": CustomFieldSpec("since", "date"),
    "vip": CustomFieldSpec("vip", "boolean"),
}


def _errors(data, lenient=False) -> dict[str, str]:
    with pytest.raises(ProfileInvalid) as exc:
        profile_clean(data, SPECS, lenient=lenient)
    return {e.field: e.message for e in exc.value.errors}


def test_standard_fields_are_normalised():
    clean = profile_clean(
        {
            "email": "  Ann@Example.COM ",
            "phone": "+44 (0)20 7946 0958",
            "timezone": "europe/paris",
            "name": "  Ann  ",
            "user_type": "TEST",
        },
        SPECS,
    )
    assert clean.values == {
        "email": "ann@example.com",
        "phone": "+442079460958",
        "timezone": "Europe/Paris",
        "name": "Ann",
        "user_type": "test",
    }


def test_null_clears_a_field_and_user_type_falls_back_to_live():
    clean = profile_clean({"city": None, "user_type": None}, SPECS)
    assert clean.values == {"city": "", "user_type": "live"}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("email", "not-an-email", "not a valid e-mail"),
        ("phone", "12345", "not a valid phone number"),
        ("phone", "+1 555 0000", "not a valid phone number"),
        ("timezone", "Mars/Olympus", "IANA"),
        ("user_type", "robot", "live"),
        ("name", 42, "Must be text"),
        ("name", "x" * 256, "At most 255"),
        ("city", "a\x00b", "NUL"),
        ("id", 5, "read-only"),
        ("user_id", "other", "read-only"),
        ("last_seen", "2024-01-01", "read-only"),
        ("created_at", "2024-01-01", "read-only"),
        ("favourite", "x", "Unknown field"),
        ("device_tokens", [{"token": "a", "platform": "windows"}], "ios"),
        ("device_tokens", [{"token": f"t{i}", "platform": "ios"} for i in range(6)], "At most 5"),
        ("device_tokens", [{"token": "a"}], "Each device token"),
        ("tags", [""], "empty"),
        ("tags", ["x" * 101], "At most 100"),
        ("custom", ["plan"], "object"),
    ],
)
def test_bad_values_name_the_field_and_the_reason(field, value, reason):
    assert reason in _errors({field: value})[field]


def test_every_problem_is_reported_at_once():
    errors = _errors({"email": "x", "custom": {"nope": 1, "score": "high"}, "bogus": 1})
    assert set(errors) == {"email", "custom.nope", "custom.score", "bogus"}
    assert "Configuration → Custom fields" in errors["custom.nope"]


def test_too_many_custom_keys():
    custom = {f"k{i}": "v" for i in range(MAX_CUSTOM_KEYS + 1)}
    assert "At most 100" in _errors({"custom": custom})["custom"]


def test_custom_values_are_typed_and_empty_removes():
    clean = profile_clean(
        {"custom": {"plan": " gold, silver ", "score": 3, "since": "2024-05-01", "vip": None}},
        SPECS,
    )
    assert clean.custom_set == {
        "plan": "gold, silver",
        "score": 3,
        "since": "2024-05-01T00:00:00Z",
    }
    assert clean.custom_unset == ["vip"]


def test_device_tokens_deduplicate():
    tokens = [{"token": "a", "platform": "ios"}, {"token": "a", "platform": "android"}]
    assert profile_clean({"device_tokens": tokens}, SPECS).values["device_tokens"] == [
        {"token": "a", "platform": "android"}
    ]


@pytest.mark.parametrize(
    ("type_", "value", "stored"),
    [
        ("number", 2.5, 2.5),
        ("number", -7, -7),
        ("boolean", False, False),
        ("date", "2024-05-01T09:30:00+02:00", "2024-05-01T07:30:00Z"),
        ("date", "2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z"),
        ("date", "2024-05-01T09:30:00", "2024-05-01T09:30:00Z"),  # no offset: UTC
        ("text", "music, books", "music, books"),
    ],
)
def test_strict_custom_values(type_, value, stored):
    assert coerce_custom_value(type_, value) == stored


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("number", True),
        ("number", "3"),
        ("number", float("nan")),
        ("number", 10**20),
        ("number", 1e300),
        ("boolean", "yes"),
        ("boolean", 1),
        ("date", "31/02/2024"),
        ("date", "2024-02-30"),
        ("date", 20240101),
        ("text", 5),
        ("text", {"a": 1}),
        ("text", "x" * 2001),
    ],
)
def test_strict_custom_values_refuse_the_wrong_type(type_, value):
    with pytest.raises(ValueError):
        coerce_custom_value(type_, value)


@pytest.mark.parametrize(
    ("type_", "value", "stored"),
    [
        ("number", " 3.50 ", 3.5),
        ("number", "42", 42),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("date", "2024-05-01", "2024-05-01T00:00:00Z"),
        ("text", 12, "12"),
    ],
)
def test_lenient_custom_values_parse_text(type_, value, stored):
    assert coerce_custom_value(type_, value, lenient=True) == stored


@given(st.one_of(st.integers(-(10**14), 10**14), st.floats(-(10**14), 10**14)))
def test_numbers_round_trip_through_text(number):
    # A number exported as text and imported again keeps its value.
    assert coerce_custom_value("number", str(number), lenient=True) == pytest.approx(number)


@given(st.datetimes(timezones=st.timezones()))
def test_dates_round_trip(moment):
    stored = coerce_custom_value("date", moment.isoformat())
    assert coerce_custom_value("date", stored) == stored
    assert stored.endswith("Z")


@pytest.mark.parametrize(
    ("label", "taken", "name"),
    [
        ("Plan tier", set(), "plan_tier"),
        ("Plan tier", {"plan_tier"}, "plan_tier_2"),
        ("Plan tier", {"plan_tier", "plan_tier_2"}, "plan_tier_3"),
        ("Café No. 1!", set(), "cafe_no_1"),
        ("2024 goals", set(), "f_2024_goals"),
        ("!!!", set(), "field"),
        ("x" * 200, set(), "x" * 59),
    ],
)
def test_custom_field_names_come_from_labels(label, taken, name):
    assert custom_field_name_for(label, taken) == name


def test_user_ids_are_trimmed_and_limited():
    assert clean_user_id("  Abc ") == "Abc"
    for bad in ("", "   ", "a\nb", "x" * 256, 5):
        with pytest.raises(ValueError):
            clean_user_id(bad)


def test_phone_default_region(settings):
    settings.PHONE_DEFAULT_REGION = "GB"
    assert clean_phone("020 7946 0958") == "+442079460958"


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"[a-z0-9_+.-]{1,12}@[a-z0-9.-]{1,20}\.[a-z0-9-]{1,6}", fullmatch=True))
def test_the_fast_email_check_accepts_only_what_django_accepts(address):
    """clean_email skips Django's validator for addresses of the everyday shape; that shape
    must be a subset of what the validator accepts."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from customers.profile import _PLAIN_EMAIL

    if _PLAIN_EMAIL.fullmatch(address):
        try:
            validate_email(address)
        except ValidationError:
            pytest.fail(f"{address!r} passes the fast check but not Django's validator")


def _phone_by_parse(value: str) -> str | None:
    import phonenumbers

    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(r"\+[1-9][0-9]{5,16}", fullmatch=True))
def test_the_e164_shortcut_agrees_with_parse(value):
    """clean_phone answers numbers already in E.164 without phonenumbers.parse; whenever it
    does, parse must give the same number."""
    from customers.profile import _e164_valid

    if _e164_valid(value):
        assert _phone_by_parse(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "+4915123456789",
        "+447700900123",
        "+351912345678",
        "+12025550123",
        "+33612345678",
        "+79123456789",
        "+81312345678",
        "+5511912345678",
        "+390612345678",  # Italy keeps a leading zero: parse decides
        "+78123456789",  # Russia, national prefix 8
        "+12",
    ],
)
def test_the_e164_shortcut_gives_what_parse_gives(value):
    from customers.profile import _e164_valid, clean_phone

    expected = _phone_by_parse(value)
    if expected is None:
        with pytest.raises(ValueError):
            clean_phone(value)
    else:
        assert clean_phone(value) == expected
    if _e164_valid(value):
        assert expected == value


def test_the_e164_shortcut_is_taken_for_everyday_numbers():
    from customers.profile import _e164_valid

    assert all(_e164_valid(v) for v in ("+4915123456789", "+447911123456", "+12025550123"))


def _valid_by_phonenumbers(code: int, national: str) -> bool:
    import phonenumbers

    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return phonenumbers.is_valid_number(number)


def _calling_codes() -> list[int]:
    import phonenumbers

    return sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _examples() -> list[tuple[int, str]]:
    import phonenumbers

    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and not example.italian_leading_zero:
                found.append((example.country_code, str(example.national_number)))
    return sorted(set(found))


@st.composite
def _near_examples(draw) -> tuple[int, str]:
    """A region's example number with some of its digits changed, some added or dropped: valid
    and invalid numbers close to the patterns."""
    code, national = draw(st.sampled_from(_examples()))
    keep = draw(st.integers(1, len(national)))
    tail = draw(st.from_regex(r"[0-9]{0,4}", fullmatch=True))
    return code, national[:keep] + tail


@settings(max_examples=1500, deadline=None)
@given(
    number=_near_examples()
    | st.tuples(
        st.sampled_from(_calling_codes()) | st.integers(1, 999),
        st.from_regex(r"[1-9][0-9]{1,14}", fullmatch=True),
    )
)
def test_national_valid_is_phonenumbers_is_valid_number(number):
    """The one-pattern-per-length check answers exactly as phonenumbers does, for every
    calling code (shared ones such as +1 and +7 included), near its example numbers and for
    any digits."""
    from customers.profile import national_valid

    code, national = number
    assert national_valid(code, national) == _valid_by_phonenumbers(code, national)


def test_national_valid_takes_every_regions_example_numbers():
    import phonenumbers

    from customers.profile import national_valid

    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None or example.italian_leading_zero:
                continue
            national = str(example.national_number)
            assert national_valid(example.country_code, national), (region, kind, national)
            checked += 1
    assert checked > 400


@settings(max_examples=500, deadline=None)
@given(
    st.from_regex(
        r"\s?(\d{1,17}|\d{4}-\d{2}-\d{2}|-?\d{1,3}\.\d{0,2}|[²٣0-9]{1,3})\s?", fullmatch=True
    )
)
def test_plain_numbers_and_days_read_as_the_general_parsers_read_them(text):
    """The shortcuts for "8387" and "1990-10-26" give exactly what the Decimal and datetime
    paths give, refusals included."""
    from datetime import UTC, date, datetime
    from decimal import Decimal, InvalidOperation

    from customers.custom_fields import NUMBER_LIMIT, format_date_value

    def number(value):
        try:
            d = Decimal(value.strip().replace(" ", ""))
        except InvalidOperation:
            return "refused"
        n = int(d) if d == d.to_integral_value() else float(d)
        return n if abs(n) < NUMBER_LIMIT else "refused"

    def day(value):
        try:
            d = date.fromisoformat(value.strip())
        except ValueError:
            return "refused"
        return format_date_value(datetime.combine(d, datetime.min.time(), tzinfo=UTC))

    def got(type_):
        try:
            return coerce_custom_value(type_, text, lenient=True)
        except ValueError:
            return "refused"

    assert got("number") == number(text)
    if "-" in text.strip()[1:]:
        assert got("date") == day(text)
