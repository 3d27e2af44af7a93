"""A customer's analytics fields from their events (events/analytics.py): first/last seen,
last seen per platform and the per-platform device fields of the mapping table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.services import Actor
from customers.models import Customer
from events.ingest import events_ingest
from events.models import Event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

IOS = {
    "platform": "ios",
    "sdk_version": "4.2.0",
    "os_version": "17.4.1",
    "device": "iPhone16,1",
}
ANDROID = {
    "platform": "android",
    "sdk_version": "5.0.1",
    "os_version": "14",
    "device": "Pixel 8",
}
WEB = {
    "platform": "web",
    "sdk_version": "2.3.0",
    "os_version": "14.4",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Firefox/124.0",
    "browser": "Firefox",
    "browser_version": "124.0",
    "os": "macOS",
}
TEXT_FIELDS = [
    "last_ios_sdk_version",
    "last_ios_os_version",
    "last_ios_device_name",
    "last_ios_device",
    "last_android_sdk_version",
    "last_android_os_version",
    "last_android_device_name",
    "last_android_device",
    "last_web_sdk_version",
    "last_browser_os_version",
    "last_browser",
    "last_browser_name",
    "last_browser_version",
    "last_browser_os",
]


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def send(*events: tuple[float, dict | None], user_id: str = "u-1") -> None:
    """One batch: (minutes ago, context) per event."""
    result = events_ingest(
        [
            {
                "user_id": user_id,
                "name": "app.opened",
                "timestamp": at(minutes).isoformat(),
                "context": context or {},
            }
            for minutes, context in events
        ],
        actor=Actor.system("tests"),
        now=NOW,
    )
    assert result.rejected == 0, result.results


def customer(user_id: str = "u-1") -> Customer:
    return Customer.objects.get(user_id=user_id)


def texts(c: Customer) -> dict[str, str]:
    return {f: getattr(c, f) for f in TEXT_FIELDS if getattr(c, f)}


# --- The mapping table --------------------------------------------------------------------


def test_an_ios_event_sets_the_ios_fields():
    send((5, IOS))
    c = customer()
    assert (c.first_seen, c.last_seen, c.last_seen_ios) == (at(5), at(5), at(5))
    assert (c.last_seen_android, c.last_seen_web) == (None, None)
    assert texts(c) == {
        "last_ios_sdk_version": "4.2.0",
        "last_ios_os_version": "17.4.1",
        "last_ios_device_name": "iPhone16,1",
        "last_ios_device": "iOS 17.4.1, iPhone16,1",
    }


def test_an_android_event_sets_the_android_fields():
    send((5, ANDROID))
    c = customer()
    assert c.last_seen_android == at(5)
    assert (c.last_seen_ios, c.last_seen_web) == (None, None)
    assert texts(c) == {
        "last_android_sdk_version": "5.0.1",
        "last_android_os_version": "14",
        "last_android_device_name": "Pixel 8",
        "last_android_device": "Android 14, Pixel 8",
    }


def test_a_web_event_sets_the_browser_fields():
    send((5, {**WEB, "device": "ignored on web"}))
    c = customer()
    assert c.last_seen_web == at(5)
    assert (c.last_seen_ios, c.last_seen_android) == (None, None)
    assert texts(c) == {
        "last_web_sdk_version": "2.3.0",
        "last_browser_os_version": "14.4",
        "last_browser": WEB["user_agent"],
        "last_browser_name": "Firefox",
        "last_browser_version": "124.0",
        "last_browser_os": "macOS",
    }


def test_browser_keys_on_a_mobile_platform_are_not_read():
    send((5, {"platform": "ios", "browser": "Safari", "user_agent": "UA", "os": "iOS"}))
    assert texts(customer()) == {}
    assert customer().last_seen_ios == at(5)


def test_an_event_without_a_platform_moves_only_first_and_last_seen():
    send((5, {"sdk_version": "9", "device": "Pixel"}), (3, None))
    c = customer()
    assert (c.first_seen, c.last_seen) == (at(5), at(3))
    assert (c.last_seen_ios, c.last_seen_android, c.last_seen_web) == (None, None, None)
    assert texts(c) == {}


def test_the_platform_is_case_insensitive():
    send((5, {"platform": " IOS ", "sdk_version": "4.2.0"}))
    assert customer().last_seen_ios == at(5)
    assert customer().last_ios_sdk_version == "4.2.0"


def test_numbers_are_stored_as_text_and_values_trimmed():
    send((5, {"platform": "android", "os_version": 14, "sdk_version": " 5.0 ", "device": " "}))
    c = customer()
    assert (c.last_android_os_version, c.last_android_sdk_version) == ("14", "5.0")
    assert c.last_android_device_name == ""
    assert c.last_android_device == "Android 14"


def test_the_device_summary_from_the_device_alone():
    send((5, {"platform": "ios", "device": "iPad13,1"}))
    assert customer().last_ios_device == "iPad13,1"


def test_longest_accepted_values_fit_their_columns():
    context = {
        **WEB,
        "user_agent": "u" * 1024,
        "sdk_version": "s" * 64,
        "os_version": "o" * 64,
        "browser": "b" * 64,
        "browser_version": "v" * 64,
        "os": "x" * 64,
    }
    send((5, context), (6, {"platform": "ios", "device": "d" * 200, "os_version": "o" * 64}))
    c = customer()
    assert c.last_browser == "u" * 1024
    assert c.last_ios_device_name == "d" * 200
    assert c.last_ios_device == f"iOS {'o' * 64}, {'d' * 200}"[:255]


def test_analytics_do_not_touch_updated_at():
    CustomerFactory(user_id="u-1")
    before = customer().updated_at
    send((5, IOS))
    send((1, WEB))
    assert customer().updated_at == before
    assert customer().last_seen == at(1)


# --- Out-of-order arrivals ----------------------------------------------------------------


def test_an_older_event_never_moves_last_seen_back():
    send((5, IOS))
    send((60, {**IOS, "sdk_version": "3.0.0", "device": "iPhone12,1", "os_version": "16.0"}))
    c = customer()
    assert c.last_seen == at(5)
    assert c.first_seen == at(60)  # first seen does move back
    assert c.last_seen_ios == at(5)
    assert texts(c)["last_ios_sdk_version"] == "4.2.0"
    assert texts(c)["last_ios_device_name"] == "iPhone16,1"
    assert texts(c)["last_ios_device"] == "iOS 17.4.1, iPhone16,1"


def test_an_older_event_of_another_platform_still_sets_that_platform():
    send((5, IOS))
    send((60, ANDROID))
    c = customer()
    assert (c.first_seen, c.last_seen) == (at(60), at(5))
    assert (c.last_seen_ios, c.last_seen_android) == (at(5), at(60))
    assert c.last_android_device_name == "Pixel 8"
    assert c.last_ios_device_name == "iPhone16,1"


def test_a_newer_event_updates_only_the_keys_it_gives():
    send((60, IOS))
    send((5, {"platform": "ios", "sdk_version": "4.3.0"}))
    c = customer()
    assert c.last_seen_ios == at(5)
    assert c.last_ios_sdk_version == "4.3.0"
    assert (c.last_ios_os_version, c.last_ios_device_name) == ("17.4.1", "iPhone16,1")
    assert c.last_ios_device == "iOS 17.4.1, iPhone16,1"


def test_within_one_batch_the_newest_event_of_each_platform_wins_whatever_its_place():
    send(
        (5, {**IOS, "device": "newest"}),
        (50, {**IOS, "device": "older"}),
        (1, {"platform": "web", "browser": "Chrome"}),
        (30, {"platform": "web", "browser": "Firefox"}),
        (40, None),
    )
    c = customer()
    assert (c.first_seen, c.last_seen) == (at(50), at(1))
    assert (c.last_seen_ios, c.last_seen_web) == (at(5), at(1))
    assert (c.last_ios_device_name, c.last_browser_name) == ("newest", "Chrome")


def test_an_event_at_the_same_time_as_the_stored_one_changes_nothing():
    send((5, {**IOS, "device": "first"}))
    send((5, {**IOS, "device": "second"}))
    assert customer().last_ios_device_name == "first"


def test_a_retried_event_with_a_later_time_is_not_applied_again():
    events_ingest(
        [{"user_id": "u-1", "name": "x", "id": "e1", "timestamp": at(60).isoformat()}],
        actor=Actor.system(),
        now=NOW,
    )
    events_ingest(
        [
            {
                "user_id": "u-1",
                "name": "x",
                "id": "e1",
                "timestamp": at(1).isoformat(),
                "context": IOS,
            }
        ],
        actor=Actor.system(),
        now=NOW,
    )
    c = customer()
    assert (c.first_seen, c.last_seen, c.last_seen_ios) == (at(60), at(60), None)
    assert texts(c) == {}


def test_each_customer_of_a_batch_gets_their_own_times():
    send((5, IOS), (10, None), user_id="a")
    send((1, WEB), user_id="b")
    send((3, None), (30, ANDROID), user_id="a")
    a, b = customer("a"), customer("b")
    assert (a.first_seen, a.last_seen, a.last_seen_ios, a.last_seen_android) == (
        at(30),
        at(3),
        at(5),
        at(30),
    )
    assert (b.first_seen, b.last_seen, b.last_seen_web, b.last_seen_ios) == (
        at(1),
        at(1),
        at(1),
        None,
    )


def test_the_same_events_give_the_same_fields_however_they_are_batched():
    older = (10, {"platform": "ios", "sdk_version": "4.0", "device": "iPhone15,2"})
    newer = (5, {"platform": "ios", "sdk_version": "4.1"})
    send(older, user_id="apart")
    send(newer, user_id="apart")
    send(older, newer, user_id="together")
    assert texts(customer("apart")) == {
        "last_ios_sdk_version": "4.1",
        "last_ios_device_name": "iPhone15,2",
        "last_ios_device": "iPhone15,2",
    }
    assert texts(customer("together")) == texts(customer("apart"))


# --- Property: any batching, any arrival order ---------------------------------------------

event_strategy = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.integers(min_value=0, max_value=60 * 24 * 400),  # minutes ago, up to ~13 months
    st.sampled_from([None, "ios", "android", "web"]),
)


def _expected(events: list[tuple[str, int, str | None]]) -> dict[str, dict]:
    """Plain Python: per user, min/max of all times and max per platform."""
    expected: dict[str, dict] = {}
    for user_id, minutes, platform in events:
        row = expected.setdefault(
            user_id,
            {"first_seen": at(minutes), "last_seen": at(minutes)}
            | {f"last_seen_{p}": None for p in ("ios", "android", "web")},
        )
        row["first_seen"] = min(row["first_seen"], at(minutes))
        row["last_seen"] = max(row["last_seen"], at(minutes))
        if platform:
            key = f"last_seen_{platform}"
            row[key] = at(minutes) if row[key] is None else max(row[key], at(minutes))
    return expected


def _device(platform: str, minutes: int) -> dict:
    return {"platform": platform, "device": f"{platform}-{minutes}", "sdk_version": str(minutes)}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(event_strategy, min_size=1, max_size=16), data=st.data())
def test_any_batching_and_order_gives_min_and_max_times(events, data):
    """Property: split the events into random batches sent in a random order; the stored
    first/last seen (overall and per platform) are the plain min/max, and the device fields
    are those of each platform's newest event."""
    Event.objects.all().delete()  # hypothesis reruns inside one test transaction
    Customer.objects.all().delete()
    cuts = sorted(data.draw(st.sets(st.integers(0, len(events)), max_size=4)) - {0, len(events)})
    bounds = [0, *cuts, len(events)]
    batches = [events[i:j] for i, j in zip(bounds, bounds[1:], strict=False)]
    for batch in data.draw(st.permutations(batches)):
        result = events_ingest(
            [
                {
                    "user_id": user_id,
                    "name": "tick",
                    "timestamp": at(minutes).isoformat(),
                    "context": _device(platform, minutes) if platform else {},
                }
                for user_id, minutes, platform in batch
            ],
            actor=Actor.system(),
            now=NOW,
        )
        assert result.rejected == 0

    expected = _expected(events)
    got = {
        c.user_id: {
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "last_seen_ios": c.last_seen_ios,
            "last_seen_android": c.last_seen_android,
            "last_seen_web": c.last_seen_web,
        }
        for c in Customer.objects.all()
    }
    assert got == expected
    assert Event.objects.count() == len(events)

    # Each event's device names its own time, so equal times carry equal devices.
    columns = {"ios": "last_ios_device_name", "android": "last_android_device_name"}
    for user_id, row in expected.items():
        c = customer(user_id)
        for platform, column in columns.items():
            newest = row[f"last_seen_{platform}"]
            if newest is not None:
                minutes = int((NOW - newest) / timedelta(minutes=1))
                assert getattr(c, column) == f"{platform}-{minutes}"
            else:
                assert getattr(c, column) == ""


def test_device_summary_keeps_the_device_when_only_the_os_version_changes():
    send = [
        {
            "user_id": "u-sum",
            "name": "x",
            "timestamp": (NOW - timedelta(hours=2)).isoformat(),
            "context": IOS,
        },
        {
            "user_id": "u-sum",
            "name": "x",
            "timestamp": (NOW - timedelta(hours=1)).isoformat(),
            "context": {"platform": "ios", "os_version": "18.0"},
        },
    ]
    for event in send:  # one request each
        assert events_ingest([event], actor=Actor.system(), now=NOW).rejected == 0
    customer = Customer.objects.get(user_id="u-sum")
    assert customer.last_ios_os_version == "18.0"
    assert customer.last_ios_device_name == "iPhone16,1"
    assert customer.last_ios_device == "iOS 18.0, iPhone16,1"
