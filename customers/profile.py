"""Customer profile fields and the one validator every write path uses (form, API, import).

``profile_clean`` turns raw input into a ``CleanProfile`` or a list of ``FieldError`` naming
the field and the reason. API input is strict JSON (a number must be a number); form and CSV
input is text and parsed leniently (``lenient=True``).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from phonenumbers import phonenumberutil

from customers.custom_fields import CustomFieldSpec, coerce_custom_value
from customers.models import UserType

USER_ID_MAX = 255
MAX_CUSTOM_KEYS = 100
MAX_DEVICE_TOKENS = 5
MAX_TAGS_PER_WRITE = 100


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ProfileInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _plain_text(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise ValueError("Must be text.")
    value = value.strip()
    if "\x00" in value:
        raise ValueError("Must not contain NUL characters.")
    if len(value) > max_length:
        raise ValueError(f"At most {max_length} characters (got {len(value)}).")
    return value


def text(max_length: int = 255) -> Callable[[Any], str]:
    return lambda value: _plain_text(value, max_length)


# Addresses of the everyday shape, a strict subset of what Django's validator accepts (its
# dot-atom local part, its host and TLD patterns): these skip the full check, which costs ~9 µs
# and is most of an import's time per row after phone numbers.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"\.[a-z]{2,63}"
)


def clean_email(value: Any) -> str:
    value = _plain_text(value, 254).lower()
    if value and not _PLAIN_EMAIL.fullmatch(value):
        try:
            validate_email(value)
        except ValidationError:
            raise ValueError(f"“{value}” is not a valid e-mail address.") from None
    return value


_E164 = re.compile(r"\+[1-9]\d{5,16}")
_KEPT_WHOLE = (
    phonenumberutil.ValidationResult.TOO_SHORT,
    phonenumberutil.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    phonenumberutil.ValidationResult.INVALID_LENGTH,
)


def _e164_valid(value: str) -> bool:
    """True for a valid number already written in E.164 that ``phonenumbers.parse`` would
    read unchanged, answered without ``parse`` (~11 µs instead of ~24; imports check millions).
    False means "ask ``parse``", never "invalid". The steps are parse's own for a "+" number:
    the country code is the shortest known prefix, and a national prefix is stripped only when
    what remains has a possible length; such numbers, and those with leading zeros, go to
    ``parse``. A property test holds this to ``parse``."""
    digits = value[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[size:]
    if len(national) < 2 or national[0] == "0":
        return False
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return False
    _, stripped, _ = phonenumberutil._maybe_strip_national_prefix_carrier_code(national, metadata)
    if stripped != national and (
        phonenumberutil._test_number_length(stripped, metadata) not in _KEPT_WHOLE
    ):
        return False
    return national_valid(code, national)


_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


@cache
def _known_pattern(region: str, code: int, length: int) -> re.Pattern | None:
    """One pattern for "a number of this length has a known type in this region": the general
    description and every type's pattern that admits the length, as phonenumbers checks them
    one by one (``_number_type_helper``, ``_is_number_matching_desc``)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    general = metadata and metadata.general_desc

    def admits(desc) -> bool:
        return bool(
            desc is not None
            and desc.national_number_pattern
            and (not desc.possible_length or length in desc.possible_length)
        )

    if not admits(general):
        return None
    types = [getattr(metadata, name) for name in _TYPE_DESCS]
    alternatives = [d.national_number_pattern for d in types if admits(d)]
    if not alternatives:
        return None
    either = "|".join(f"(?:{p})" for p in alternatives)
    return re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{either})\\Z")


def _type_known(region: str, code: int, national: str) -> bool:
    pattern = _known_pattern(region, code, len(national))
    return pattern is not None and pattern.match(national) is not None


def national_valid(code: int, national: str) -> bool:
    """``phonenumbers.is_valid_number`` for country code ``code`` and a national number without
    leading zeros, with one regular expression per region and length instead of one per number
    type (~3x quicker; a property test holds it to phonenumbers)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not regions:
        return False
    region = regions[0] if len(regions) == 1 else None
    if region is None:  # phonenumbers' _region_code_for_number_from_list
        for candidate in regions:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(candidate.upper(), None)
            if metadata is None:
                continue
            if metadata.leading_digits is not None:
                if re.match(metadata.leading_digits, national):
                    region = candidate
                    break
            elif _type_known(candidate.upper(), code, national):
                region = candidate
                break
        if region is None:
            return False
    if region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY and (
        code != phonenumbers.country_code_for_valid_region(region)
    ):
        return False
    return _type_known(region.upper(), code, national)


def clean_phone(value: Any) -> str:
    value = _plain_text(value, 64)
    if not value:
        return ""
    if _E164.fullmatch(value) and _e164_valid(value):
        return value
    region = settings.PHONE_DEFAULT_REGION or None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        hint = "" if region else " Use the international format, e.g. +44 20 7946 0958."
        raise ValueError(f"“{value}” is not a valid phone number.{hint}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@cache
def _timezones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def clean_timezone(value: Any) -> str:
    value = _plain_text(value, 64)
    if not value:
        return ""
    try:
        return _timezones()[value.lower()]
    except KeyError:
        raise ValueError(f"“{value}” is not an IANA time zone such as Europe/Paris.") from None


def clean_user_type(value: Any) -> str:
    value = value.strip().lower() if isinstance(value, str) else value
    if value not in UserType.values:
        raise ValueError("Must be “live” or “test”.")
    return value


_CONTROL_IN_USER_ID = re.compile("[\x00\r\n\t]")


def clean_user_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Must be text.")
    value = value.strip()
    if not value:
        raise ValueError("A user ID is required.")
    if _CONTROL_IN_USER_ID.search(value):
        raise ValueError("Must not contain control characters.")
    if len(value) > USER_ID_MAX:
        raise ValueError(f"At most {USER_ID_MAX} characters (got {len(value)}).")
    return value


@dataclass(frozen=True)
class ProfileField:
    name: str
    label: str
    clean: Callable[[Any], str]
    # Personal values are masked in the activity log.
    personal: bool = True


STANDARD_FIELDS: dict[str, ProfileField] = {
    f.name: f
    for f in (
        ProfileField("name", "Name", text()),
        ProfileField("first_name", "First name", text()),
        ProfileField("last_name", "Last name", text()),
        ProfileField("email", "E-mail", clean_email),
        ProfileField("phone", "Phone", clean_phone),
        ProfileField("city", "City", text()),
        ProfileField("country", "Country", text(100), personal=False),
        ProfileField("region", "Region", text(), personal=False),
        ProfileField("timezone", "Time zone", clean_timezone, personal=False),
        ProfileField("external_id", "External ID", text()),
        ProfileField("user_type", "User type", clean_user_type, personal=False),
    )
}

# (name, label, is_datetime). Filled by event ingestion; read-only to every write path.
ANALYTICS_FIELDS: list[tuple[str, str, bool]] = [
    ("first_seen", "First seen", True),
    ("last_seen", "Last seen", True),
    ("last_seen_ios", "Last seen on iOS", True),
    ("last_seen_android", "Last seen on Android", True),
    ("last_seen_web", "Last seen on Web", True),
    ("last_android_sdk_version", "Last Android SDK version", False),
    ("last_android_device", "Last Android device", False),
    ("last_android_os_version", "Last Android OS version", False),
    ("last_android_device_name", "Last Android device name", False),
    ("last_ios_sdk_version", "Last iOS SDK version", False),
    ("last_ios_device", "Last iOS device", False),
    ("last_ios_os_version", "Last iOS OS version", False),
    ("last_ios_device_name", "Last iOS device name", False),
    ("last_browser", "Last browser", False),
    ("last_browser_name", "Last browser name", False),
    ("last_browser_version", "Last browser version", False),
    ("last_browser_os", "Last browser OS", False),
    ("last_browser_os_version", "Last browser OS version", False),
    ("last_web_sdk_version", "Last web SDK version", False),
]
ANALYTICS_FIELD_NAMES = frozenset(name for name, _, _ in ANALYTICS_FIELDS)
READ_ONLY_FIELDS = ANALYTICS_FIELD_NAMES | {"id", "created_at", "updated_at"}


@dataclass
class CleanProfile:
    """Validated changes for one customer: only the keys given are present."""

    values: dict[str, Any] = field(default_factory=dict)  # standard fields + device_tokens
    custom_set: dict[str, Any] = field(default_factory=dict)
    custom_unset: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def changed_fields(self) -> list[str]:
        return [*self.values, *(f"custom.{k}" for k in (*self.custom_set, *self.custom_unset))]

    def as_json(self) -> dict[str, Any]:
        return {
            "set": self.values,
            "custom_set": self.custom_set,
            "custom_unset": self.custom_unset,
        }


def _clean_device_tokens(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ValueError('Must be a list of {"token": ..., "platform": "ios" | "android"}.')
    if len(value) > MAX_DEVICE_TOKENS:
        raise ValueError(f"At most {MAX_DEVICE_TOKENS} device tokens (got {len(value)}).")
    tokens: dict[str, dict[str, str]] = {}
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"token", "platform"}:
            raise ValueError('Each device token is {"token": ..., "platform": ...}.')
        token = _plain_text(item["token"], 4096)
        platform = item["platform"]
        if platform not in ("ios", "android"):
            raise ValueError("A device token's platform is “ios” or “android”.")
        if not token:
            raise ValueError("A device token must not be empty.")
        tokens[token] = {"token": token, "platform": platform}
    return list(tokens.values())


def _clean_tags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("Must be a list of tag names.")
    if len(value) > MAX_TAGS_PER_WRITE:
        raise ValueError(f"At most {MAX_TAGS_PER_WRITE} tags per write.")
    names: dict[str, str] = {}
    for name in value:
        # Inner whitespace collapses as tags.services.tag_name_clean does, so "VIP  gold" and
        # "VIP gold" are one tag here as they are in the database.
        name = " ".join(_plain_text(name, 100).split())
        if not name:
            raise ValueError("A tag name must not be empty.")
        names.setdefault(name.lower(), name)
    return list(names.values())


def profile_clean(
    data: Mapping[str, Any],
    custom_fields: Mapping[str, CustomFieldSpec],
    *,
    lenient: bool = False,
    allow_tags: bool = True,
) -> CleanProfile:
    """Validate one customer's changes. Raises ProfileInvalid with every problem found.

    Keys: the standard fields, ``custom`` (a mapping of custom field name → value; null or ""
    removes the value), ``tags`` (names to add) and ``device_tokens`` (replaces the list).
    """
    errors: list[FieldError] = []
    clean = CleanProfile()
    for key, value in data.items():
        try:
            if key in STANDARD_FIELDS:
                if value is None:
                    value = "live" if key == "user_type" else ""
                clean.values[key] = STANDARD_FIELDS[key].clean(value)
            elif key == "custom":
                _clean_custom(value, custom_fields, lenient, clean, errors)
            elif key == "device_tokens":
                clean.values[key] = _clean_device_tokens([] if value is None else value)
            elif key == "tags" and allow_tags:
                clean.tags = _clean_tags(value)
            elif key in READ_ONLY_FIELDS or key == "user_id":
                errors.append(FieldError(key, "This field is read-only."))
            else:
                errors.append(FieldError(key, "Unknown field."))
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
    if errors:
        raise ProfileInvalid(errors)
    return clean


def _clean_custom(
    value: Any,
    custom_fields: Mapping[str, CustomFieldSpec],
    lenient: bool,
    clean: CleanProfile,
    errors: list[FieldError],
) -> None:
    if not isinstance(value, Mapping):
        raise ValueError("Must be an object of custom field name → value.")
    if len(value) > MAX_CUSTOM_KEYS:
        raise ValueError(f"At most {MAX_CUSTOM_KEYS} custom fields per write (got {len(value)}).")
    for name, raw in value.items():
        spec = custom_fields.get(name)
        if spec is None:
            errors.append(
                FieldError(
                    f"custom.{name}",
                    "No such custom field; create it under Configuration → Custom fields.",
                )
            )
            continue
        try:
            typed = coerce_custom_value(spec.type, raw, lenient=lenient)
        except ValueError as exc:
            errors.append(FieldError(f"custom.{name}", str(exc)))
            continue
        if typed is None:
            clean.custom_unset.append(name)
        else:
            clean.custom_set[name] = typed


def mask_changes(clean: CleanProfile) -> dict[str, Any]:
    """Values for the activity log: non-personal fields only; the rest are named, not shown."""
    return {
        name: value
        for name, value in clean.values.items()
        if name in STANDARD_FIELDS and not STANDARD_FIELDS[name].personal
    }
