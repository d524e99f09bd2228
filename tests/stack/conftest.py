"""The stack tests: the whole native stack (conftest's session ``stack``), and stacks of their own."""

from __future__ import annotations

import contextlib

import pytest

from tests.support.helpers import running_stack


@pytest.fixture
def make_stack():
    """Start a stack of one's own (other settings, or to break it); stopped after the test."""
    with contextlib.ExitStack() as started:
        yield lambda overrides=None, **kwargs: started.enter_context(running_stack(overrides, **kwargs))
