"""Suggesting a target for each CSV column from its header.

A target is "id" (the user ID), a standard profile field ("email", "first_name", ...),
"custom.<name>" for an existing custom field, or "skip". Headers are compared normalised:
case-insensitive, with spaces, underscores, hyphens and dots ignored ("E-mail address",
"email_address" and "EmailAddress" are the same), so the table below lists each spelling once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from customers.custom_fields import CustomFieldSpec
from customers.profile import STANDARD_FIELDS

SKIP = "skip"
ID = "id"
CUSTOM_PREFIX = "custom."

_SEPARATORS = re.compile(r"[\s_\-.]+")

# Common spellings of the user ID column in other tools' exports.
_ID_HEADERS = {"id", "userid", "customerid"}

# Other spellings of standard fields; each field's own name and label match too.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "mailaddress"),
    "first_name": ("firstname", "givenname", "forename"),
    "last_name": ("lastname", "surname", "familyname"),
    "name": ("name", "fullname"),
    "phone": (
        "phone",
        "phonenumber",
        "mobile",
        "mobilenumber",
        "mobilephone",
        "telephone",
        "telephonenumber",
        "tel",
        "msisdn",
    ),
    "city": ("city", "town"),
    "country": ("country", "countrycode"),
    "region": ("region", "state", "province"),
    "timezone": ("timezone", "tz"),
    "external_id": ("externalid", "externaluserid"),
    "user_type": ("usertype",),
}


def header_normalise(header: str) -> str:
    """ " E-mail_Address " -> "emailaddress" (a BOM and surrounding whitespace dropped)."""
    return _SEPARATORS.sub("", header.replace("\ufeff", "").strip().casefold())


def _exact_standard() -> dict[str, str]:
    exact: dict[str, str] = {}
    for name, field in STANDARD_FIELDS.items():
        exact[header_normalise(name)] = name
        exact[header_normalise(field.label)] = name
    return exact


_EXACT_STANDARD = _exact_standard()
_SYNONYM_TARGETS = {
    spelling: field for field, spellings in _SYNONYMS.items() for spelling in spellings
}
assert set(_SYNONYMS) <= set(STANDARD_FIELDS), "a synonym names an unknown standard field"


class _Matcher:
    def __init__(self, custom: Mapping[str, CustomFieldSpec]) -> None:
        self.custom_names = {name: name for name in custom}
        self.custom_normalised: dict[str, str] = {}
        # Names before labels, so a field's name wins over another field's label.
        for spec in custom.values():
            if spec.label:
                self.custom_normalised.setdefault(header_normalise(spec.label), spec.name)
        for name in custom:
            self.custom_normalised[header_normalise(name)] = name

    def target(self, header: str) -> str:
        raw = header.replace("\ufeff", "").strip()
        if raw.casefold().startswith(CUSTOM_PREFIX):
            # The export's own column form; an unknown field is not guessed at.
            rest = raw[len(CUSTOM_PREFIX) :].strip()
            name = self.custom_names.get(rest) or self.custom_normalised.get(header_normalise(rest))
            return f"{CUSTOM_PREFIX}{name}" if name else SKIP
        key = header_normalise(raw)
        if not key:
            return SKIP
        if key in _ID_HEADERS:
            return ID
        # An exact standard name or label first, then a custom field's own name or label
        # (a custom field labelled "Mobile" is meant more exactly than the phone synonym),
        # then the synonyms.
        if key in _EXACT_STANDARD:
            return _EXACT_STANDARD[key]
        if key in self.custom_normalised:
            return f"{CUSTOM_PREFIX}{self.custom_normalised[key]}"
        return _SYNONYM_TARGETS.get(key, SKIP)


def target_suggest(header: str, custom: Mapping[str, CustomFieldSpec]) -> str:
    """The target a column with this header most likely fills, or "skip"."""
    return _Matcher(custom).target(header)


def mapping_suggest(headers: list[str], custom: Mapping[str, CustomFieldSpec]) -> list[str]:
    """One target per header. A target is never suggested twice: the first column that
    matches it gets it, later ones are skipped."""
    matcher = _Matcher(custom)
    taken: set[str] = set()
    mapping: list[str] = []
    for header in headers:
        target = matcher.target(header)
        if target != SKIP and target in taken:
            target = SKIP
        taken.add(target)
        mapping.append(target)
    return mapping
