"""Fixtures shared by the kinds of tests (unit, service, stack, static, browser): a real AWS
emulator, bootstrapped settings on it, the session's native stack. Each kind's folder has a
conftest.py of its own for what only it uses; what the tests import lives in tests.support."""

from __future__ import annotations

import os

import pytest

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
