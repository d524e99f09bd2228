"""Fixtures shared by the kinds of tests (unit, service, stack, static, browser): a real AWS
emulator, bootstrapped settings on it, the session's native stack. Each kind's folder has a
conftest.py of its own for what only it uses; what the tests import lives in tests.support."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.helpers import Emulator, isolated_settings, running_stack


@pytest.fixture(scope="session")
def emulator():
    """A moto server for in-process tests; its address is put in the environment boto3 reads."""
    emu = Emulator()
    saved = {k: os.environ.get(k) for k in emu.env}
    os.environ.update(emu.env)
    yield emu
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    emu.stop()


@pytest.fixture
def settings(emulator):
    """Fresh, bootstrapped resources (unique names) on the session's emulator."""
    return isolated_settings()


@pytest.fixture(scope="session")
def stack():
    """The whole native stack (`make run`), started once for the session (the stack and browser
    tests use it)."""
    with running_stack(holds=True) as s:
        yield s


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright (never a browser download), one for the session: the
    browser and compose tests share it (Playwright's sync API runs one event loop a thread)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
