"""Every rule of one incoming event (events/validation.py): pure Python, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import validation
from events.validation import (
    CONTEXT_MAX_BYTES,
    PROPERTIES_MAX_BYTES,
    CleanEvent,
    EventInvalid,
    event_clean,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def clean(**raw) -> CleanEvent:
    return event_clean({"user_id": "u-1", "name": "purchase", **raw}, now=NOW)


def errors(raw: object) -> dict[str, str]:
    """field → message of a rejected event (fails if it was accepted)."""
    with pytest.raises(EventInvalid) as caught:
        event_clean(raw, now=NOW)
    return {e.field: e.message for e in caught.value.errors}


def rejected(**raw) -> dict[str, str]:
    return errors({"user_id": "u-1", "name": "purchase", **raw})


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep: nested(1) == {"k": 1}."""
    value: object = 1
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[return-value]


def test_a_minimal_event_is_accepted_with_defaults():
    event = event_clean({"user_id": "u-1", "name": "purchase"}, now=NOW)
    assert event.user_id == "u-1"
    assert event.name == "purchase"
    assert event.occurred_at == NOW  # no timestamp: now
    assert event.client_id is None
    assert (event.properties, event.context, event.platform) == ({}, {}, "")


def test_a_full_event_is_cleaned():
    event = event_clean(
        {
            "id": " evt-1 ",
            "user_id": " u-1 ",
            "name": " Checkout.Completed ",
            "timestamp": "2026-11-20T09:30:00+02:00",
            "properties": {"amount": 12.5, "items": [{"sku": "A"}]},
            "context": {"platform": " iOS ", "sdk_version": "4.1.0"},
        },
        now=NOW,
    )
    assert event.user_id == "u-1"
    assert event.client_id == "evt-1"
    assert event.name == "checkout.completed"
    assert event.occurred_at == datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.platform == "ios"
    assert json.loads(event.properties_json) == {"amount": 12.5, "items": [{"sku": "A"}]}
    assert json.loads(event.context_json) == {"platform": " iOS ", "sdk_version": "4.1.0"}


def test_not_an_object_is_rejected():
    for raw in ([1], "purchase", 5, None, True):
        assert errors(raw) == {"event": "Must be a JSON object."}


def test_every_problem_is_reported_at_once():
    found = errors({"name": "_bad", "timestamp": "soon", "properties": [], "extra": 1})
    assert set(found) == {"user_id", "name", "timestamp", "properties", "extra"}


# --- user ID ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "message"),
    [
        (None, "A user ID is required."),
        ("", "A user ID is required."),
        ("   ", "A user ID is required."),
        (123, "Must be text."),
        (["u-1"], "Must be text."),
        ("u\x001", "Must not contain control characters."),
        ("u\n1", "Must not contain control characters."),
        ("u" * 256, "At most 255 characters (got 256)."),
    ],
)
def test_bad_user_ids_are_rejected(user_id, message):
    assert rejected(user_id=user_id) == {"user_id": message}


def test_missing_user_id_is_rejected():
    assert errors({"name": "purchase"}) == {"user_id": "A user ID is required."}


def test_user_id_of_255_characters_is_accepted():
    assert clean(user_id="u" * 255).user_id == "u" * 255


# --- name ---------------------------------------------------------------------------------


def test_missing_name_is_rejected():
    assert errors({"user_id": "u-1"}) == {"name": "An event name is required."}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("purchase", "purchase"),
        ("App.Opened", "app.opened"),  # case-folded, then checked
        ("CHECKOUT-STEP_2", "checkout-step_2"),
        ("  padded  ", "padded"),
        ("0day", "0day"),
        ("a", "a"),
        ("a" * 100, "a" * 100),
        ("A" * 100, "a" * 100),
        ("card-displayed", "card-displayed"),  # a built-in analytics event may be sent
        ("Card-Displayed", "card-displayed"),
    ],
)
def test_valid_names_are_case_folded(name, expected):
    assert clean(name=name).name == expected


@pytest.mark.parametrize(
    "name",
    [
        "a" * 101,
        "_private",
        ".hidden",
        "-dash",
        "two words",
        "café",
        "emoji🎉",
        "slash/name",
        "colon:name",
        "nul\x00name",
        "tab\tname",
    ],
)
def test_names_outside_the_pattern_are_rejected(name):
    assert "Use 1–100 characters" in rejected(name=name)["name"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "An event name is required."),
        ("   ", "An event name is required."),
        (5, "Must be text."),
    ],
)
def test_blank_or_non_text_names_are_rejected(name, message):
    assert rejected(name=name) == {"name": message}


@pytest.mark.parametrize("name", ["segment-entered", "segment-exited", "Segment-Entered"])
def test_system_events_cannot_be_sent(name):
    assert "emitted by Workbench itself" in rejected(name=name)["name"]


# --- timestamp ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T09:30:00Z", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("2026-11-23T09:30:00.123456+00:00", datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-11-23T09:30:00-05:00", datetime(2026, 11, 23, 14, 30, tzinfo=UTC)),
        ("2026-11-23T09:30:00", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
        ("2001-01-01T00:00:00Z", datetime(2001, 1, 1, tzinfo=UTC)),  # the past is fine
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_iso_timestamps_are_parsed_as_utc(text, expected):
    occurred_at = clean(timestamp=text).occurred_at
    assert occurred_at == expected
    assert occurred_at.utcoffset() == timedelta(0)


def test_timestamps_up_to_24_hours_ahead_are_accepted():
    for ahead in (timedelta(hours=23, minutes=59, seconds=59), timedelta(hours=24)):
        assert clean(timestamp=(NOW + ahead).isoformat()).occurred_at == NOW + ahead


@pytest.mark.parametrize(
    "ahead",
    [timedelta(hours=24, microseconds=1), timedelta(hours=24, seconds=1), timedelta(days=3)],
)
def test_timestamps_more_than_24_hours_ahead_are_rejected(ahead):
    found = rejected(timestamp=(NOW + ahead).isoformat())
    assert found == {"timestamp": "Is more than 24 hours in the future."}


def test_the_future_limit_follows_the_clock_given():
    later = NOW + timedelta(hours=30)
    raw = {"user_id": "u-1", "name": "x", "timestamp": later.isoformat()}
    assert event_clean(raw, now=NOW + timedelta(hours=7)).occurred_at == later
    with pytest.raises(EventInvalid):
        event_clean(raw, now=NOW)


@pytest.mark.parametrize(
    "text",
    ["yesterday", "", "2026-13-01T00:00:00Z", "2026-11-31", "23/11/2026", "2026-11-23T25:00:00Z"],
)
def test_unparsable_timestamps_are_rejected(text):
    assert "Not an ISO-8601 date-time" in rejected(timestamp=text)["timestamp"]


@pytest.mark.parametrize("value", [1700000000, 1700000000.5, True, ["2026-11-23"], {"t": 1}])
def test_non_text_timestamps_are_rejected(value):
    assert "Must be an ISO-8601 date-time text" in rejected(timestamp=value)["timestamp"]


def test_timestamps_before_1970_are_rejected():
    found = rejected(timestamp="1969-12-31T23:59:59Z")
    assert found == {"timestamp": "Is before 1970."}
    assert rejected(timestamp="0001-01-01T00:00:00+01:00") == {"timestamp": "Is before 1970."}


# --- client id ----------------------------------------------------------------------------


def test_client_ids_may_be_text_or_integers():
    assert clean(id=" abc ").client_id == "abc"
    assert clean(id=42).client_id == "42"
    assert clean(id="x" * 255).client_id == "x" * 255


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Must not be empty"),
        ("  ", "Must not be empty"),
        (True, "Must be text or an integer."),
        (1.5, "Must be text or an integer."),
        ({"a": 1}, "Must be text or an integer."),
        ("x" * 256, "At most 255 characters."),
        ("a\x00b", "Must not contain NUL characters."),
    ],
)
def test_bad_client_ids_are_rejected(value, message):
    assert message in rejected(id=value)["id"]


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[], ["a"], "text", 5, True])
def test_properties_must_be_an_object(value):
    assert rejected(properties=value) == {"properties": "Must be a JSON object."}


def test_null_properties_and_context_are_empty():
    event = clean(properties=None, context=None)
    assert (event.properties, event.context) == ({}, {})


def _properties_of_bytes(size: int, char: str = "x") -> dict:
    """{"s": "..."} whose compact JSON is exactly ``size`` bytes (``char`` of 1 or 2 bytes)."""
    width = len(char.encode())
    overhead = len(b'{"s":""}')
    assert (size - overhead) % width == 0
    value = {"s": char * ((size - overhead) // width)}
    assert len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) == size
    return value


def test_properties_of_exactly_32_kb_are_accepted():
    assert PROPERTIES_MAX_BYTES == 32 * 1024
    event = clean(properties=_properties_of_bytes(PROPERTIES_MAX_BYTES))
    assert len(event.properties_json.encode()) == PROPERTIES_MAX_BYTES


def test_properties_over_32_kb_are_rejected():
    found = rejected(properties=_properties_of_bytes(PROPERTIES_MAX_BYTES + 1))
    assert found == {"properties": "Larger than 32 KB."}


def test_multibyte_characters_count_in_bytes():
    # 16,381 two-byte characters: about 16 K characters but 32,770 bytes.
    value = _properties_of_bytes(PROPERTIES_MAX_BYTES + 2, "é")
    assert len(value["s"]) < PROPERTIES_MAX_BYTES // 2
    assert rejected(properties=value) == {"properties": "Larger than 32 KB."}
    assert clean(properties=_properties_of_bytes(PROPERTIES_MAX_BYTES, "é"))


def test_properties_nested_five_deep_are_accepted_six_rejected():
    assert clean(properties=nested(5)).properties == nested(5)
    assert rejected(properties=nested(6)) == {"properties": "Nested deeper than 5 levels."}


def test_arrays_count_as_levels():
    five = {"a": [[[{"b": 1}]]]}  # object, array, array, array, object
    assert clean(properties=five)
    assert rejected(properties={"a": [[[[{"b": 1}]]]]}) == {
        "properties": "Nested deeper than 5 levels."
    }


@pytest.mark.parametrize(
    "properties",
    [{"s": "a\x00b"}, {"k\x00": 1}, {"list": ["ok", "\x00"]}, {"deep": {"s": "\x00"}}],
)
def test_nul_characters_in_properties_are_rejected(properties):
    assert rejected(properties=properties) == {"properties": "Must not contain NUL characters."}


def test_a_literal_backslash_u0000_is_not_a_nul_character():
    value = {"path": "C:\\u0000\\file"}  # backslash, 'u0000', backslash, 'file'
    assert "\x00" not in value["path"]
    assert clean(properties=value).properties == value


def test_unicode_properties_are_stored_unescaped():
    event = clean(properties={"city": "Zürich", "emoji": "🎉"})
    assert event.properties_json == '{"city":"Zürich","emoji":"🎉"}'


# --- context ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "platform"),
    [("ios", "ios"), ("Android", "android"), (" WEB ", "web"), (None, "")],
)
def test_platform_is_one_of_ios_android_web(given, platform):
    context = {} if given is None else {"platform": given}
    assert clean(context=context).platform == platform


@pytest.mark.parametrize("platform", ["windows", "", "i os", 1, True, ["ios"]])
def test_other_platforms_are_rejected(platform):
    found = rejected(context={"platform": platform})
    assert found == {"context.platform": "Must be ios, android or web."}


@pytest.mark.parametrize(
    ("key", "limit"),
    [
        ("sdk_version", 64),
        ("os_version", 64),
        ("device", 200),
        ("user_agent", 1024),
        ("browser", 64),
        ("browser_version", 64),
        ("os", 64),
    ],
)
def test_context_text_values_have_length_limits(key, limit):
    assert clean(context={"platform": "web", key: "v" * limit})
    found = rejected(context={"platform": "web", key: "v" * (limit + 1)})
    assert found == {f"context.{key}": f"At most {limit} characters."}


@pytest.mark.parametrize("value", [["4.1"], {"v": 1}, True])
def test_context_text_values_must_be_scalars(value):
    assert rejected(context={"sdk_version": value}) == {"context.sdk_version": "Must be text."}


def test_numeric_context_values_are_accepted():
    assert clean(context={"platform": "android", "os_version": 14, "sdk_version": 4.1})


def test_other_context_keys_are_kept_as_given():
    event = clean(context={"platform": "ios", "locale": "pt-PT", "screen": {"w": 390}})
    assert event.context == {"platform": "ios", "locale": "pt-PT", "screen": {"w": 390}}


def test_context_must_be_an_object_of_at_most_8_kb():
    assert rejected(context=["ios"]) == {"context": "Must be a JSON object."}
    assert CONTEXT_MAX_BYTES == 8 * 1024
    assert clean(context=_properties_of_bytes(CONTEXT_MAX_BYTES))
    found = rejected(context=_properties_of_bytes(CONTEXT_MAX_BYTES + 1))
    assert found == {"context": "Larger than 8 KB."}


def test_context_nul_characters_and_depth_are_rejected():
    assert rejected(context={"locale": "pt\x00"}) == {"context": "Must not contain NUL characters."}
    assert rejected(context=nested(6)) == {"context": "Nested deeper than 5 levels."}


# --- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["event", "userId", "type", "anonymous_id", "Name"])
def test_unknown_top_level_keys_are_rejected(key):
    assert rejected(**{key: "x"}) == {key: "Unknown field."}


def test_non_ascii_names_are_rejected_even_when_case_folding_makes_them_ascii():
    assert "name" in rejected(name="\u212aick")  # KELVIN SIGN folds to "k"


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included
    | st.text(alphabet=st.characters(codec=None, exclude_categories=())),  # NUL, surrogates
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def _outcome(check, value):
    try:
        return "ok", json.loads(check(value, 300))
    except ValueError as exc:
        return "error", str(exc)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=3), _json_values, max_size=4))
def test_the_fast_serialiser_accepts_and_refuses_exactly_as_the_exact_one(value):
    # orjson first (validation._stored_json); the standard library's exact checks otherwise.
    assert _outcome(validation._stored_json, value) == _outcome(
        validation._stored_json_checked, value
    )
