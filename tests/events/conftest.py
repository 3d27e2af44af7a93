from __future__ import annotations

import pytest

from activity.services import Actor


@pytest.fixture
def actor():
    return Actor.system("tests")
