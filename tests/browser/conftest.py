"""Pages of the session's browser (tests/conftest.py), and screenshots under test-output/browser/."""

from __future__ import annotations

import pytest

from tests.support.chromium import PHONE
from tests.support.helpers import OUTPUT

SCREENSHOTS = OUTPUT / "browser"


@pytest.fixture
def open_page(browser):
    """``open_page(url, before=None)``: a page of its own browser context (its own storage) at a
    phone's width, loaded at ``url`` once ``before(page)`` ran; errors in its scripts fail the test."""
    contexts, problems = [], []

    def open_(url: str, before=None):
        context = browser.new_context(viewport=PHONE, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        if before:
            before(page)
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], f"the page's scripts failed: {problems}"


@pytest.fixture
def page(open_page, stack):
    """The page of the session's stack."""
    return open_page(stack.web_url)


@pytest.fixture
def screenshot(request):
    def take(page, suffix: str = "") -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name + (f"-{suffix}" if suffix else "")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
