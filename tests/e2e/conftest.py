"""Browser tests: Debian's Chromium driven through Playwright's sync API against `live_server`.

Playwright's sync API keeps an asyncio loop running in the test thread from the moment it
starts until it stops, and Django's ORM refuses to run in a thread with a running loop
(SynchronousOnlyOperation). The tests create rows with the factories in that thread, so
DJANGO_ALLOW_ASYNC_UNSAFE is set for exactly as long as Playwright runs (the session-scoped
`browser` fixture); they never share a connection with the live server's thread, so this is safe.

It is not set at import time: the variable would then leak into every subprocess the rest of
the suite starts, and `manage.py check --deploy` (tests/test_deploy_check.py) rejects it
(async.E001). For the same reason the browser tests run last: once Playwright has started, its
loop stays in the main thread until the session ends, which no other test should see.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from members.roles import Role
from tests.factories import PASSWORD, MemberFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots go outside the repository; set E2E_SCREENSHOTS=1 to take them.
SCREENSHOT_DIR = Path(os.environ.get("E2E_SCREENSHOT_DIR", tempfile.gettempdir()))
TIMEOUT_MS = 10_000
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

_E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e and run them after all the others.

    This hook sees the whole session's items, not only this directory's.
    """
    e2e = [item for item in items if _E2E_DIR in item.path.parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    chosen = set(e2e)
    items[:] = [item for item in items if item not in chosen] + e2e


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def admin(transactional_db):
    return MemberFactory(role=Role.ADMIN, email="admin@test.example", name="Ada Admin")


@pytest.fixture
def viewer(transactional_db):
    return MemberFactory(role=Role.VIEWER, email="viewer@test.example", name="Vera Viewer")


def login(page: Page, email: str, password: str = PASSWORD, *, expect_path: str = "/") -> None:
    """Sign in through the real form and wait until the browser has landed."""
    page.goto("/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"^https?://[^/]+{re.escape(expect_path)}$"))


def logout(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/$"))


def heading(page: Page) -> Locator:
    """The page's title inside the shell's main column."""
    return page.locator("main h1")


def shot(page: Page, name: str) -> None:
    """One screenshot per page, outside the repository, when E2E_SCREENSHOTS is set."""
    if os.environ.get("E2E_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOT_DIR / f"e2e-{name}.png"), full_page=True)
