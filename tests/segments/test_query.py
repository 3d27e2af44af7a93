"""The preview's fallback: a count past the statement timeout answers with the planner's
estimate instead of failing."""

from __future__ import annotations

import pytest
from django.db import connection

from segments import query
from segments.query import preview
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TREE = {
    "type": "group",
    "match": "all",
    "negate": False,
    "children": [{"type": "attribute", "field": "city", "operator": "is", "value": "oslo"}],
}


@pytest.fixture
def oslo():
    for i in range(3):
        CustomerFactory(user_id=f"c{i}", city="Oslo")
    CustomerFactory(user_id="bergen", city="Bergen")


def test_a_count_within_the_timeout_is_exact(oslo):
    result = preview(TREE, "UTC", timeout_ms=5000)
    assert (result.count, result.estimated) == (3, False)
    assert [row["user_id"] for row in result.sample] == ["c0", "c1", "c2"]


def test_a_count_past_the_timeout_falls_back_to_the_estimate(oslo, monkeypatch):
    with connection.cursor() as cursor:
        # A condition that takes 0.2 s a row: the count cannot finish within 50 ms.
        cursor.execute(
            "CREATE FUNCTION pg_temp.slow_lower(text) RETURNS text LANGUAGE sql"
            " AS $$ SELECT lower($1) FROM pg_sleep(0.2) $$"
        )
    real = query.compile_rules

    def slowed(tree, ctx):
        where = real(tree, ctx)
        where.sql = where.sql.replace("lower(", "pg_temp.slow_lower(", 1)
        return where

    monkeypatch.setattr(query, "compile_rules", slowed)
    result = preview(TREE, "UTC", timeout_ms=50)
    assert result.estimated and result.count >= 1  # the planner's guess, not an error
    assert result.steps == []
