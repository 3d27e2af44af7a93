from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from exports import tasks


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    """Every test writes its export files into its own folder."""
    settings.EXPORTS_DIR = tmp_path / "exports"
    return settings.EXPORTS_DIR


@pytest.fixture
def sent(monkeypatch):
    """The messages sent by the export actors: (actor name, args)."""
    messages: list[tuple[str, tuple]] = []
    for actor in (tasks.build_export, tasks.expire_exports):

        def send(*args, _name=actor.actor_name, **kwargs):
            messages.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return messages


@pytest.fixture
def background(settings):
    """Anything over two rows is built in the background."""
    settings.EXPORTS_STREAM_MAX_ROWS = 2


def xlsx_rows(data: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
