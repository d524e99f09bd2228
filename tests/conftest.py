"""Fixtures shared by every test: a real AWS emulator, bootstrapped settings, the native stack."""

from __future__ import annotations

import os

import pytest

from tests.helpers import Emulator, Stack, isolated_settings

# What the session's stack runs with: small multipart parts so tests can exercise them with
# small files, and a function timeout a real (2-core) inference fits in.
STACK_SETTINGS = {
    "DIVESCORE_MULTIPART_THRESHOLD_BYTES": str(6 * 1024 * 1024),
    "DIVESCORE_PART_SIZE_BYTES": str(5 * 1024 * 1024),
    "DIVESCORE_FUNCTION_TIMEOUT_SECONDS": "120",
    "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": "130",
    "DIVESCORE_ALLOW_LOOPBACK_HTTP_CALLBACKS": "1",  # the webhook tests' receivers listen on loopback
}


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
    """The whole native stack (`make run`), started once for the session."""
    s = Stack(STACK_SETTINGS, holds=True)
    yield s
    s.stop()


@pytest.fixture
def make_stack():
    """Start a stack of one's own (other settings, or to break it); stopped after the test."""
    started = []

    def make(overrides=None, **kwargs):
        s = Stack({**STACK_SETTINGS, **(overrides or {})}, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
