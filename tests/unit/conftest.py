"""The unit tests: functions, the model and the video pipeline in process; the services'
Flask apps and the function's worker in process against the session's emulator."""

from __future__ import annotations

import pytest

from tests.support.scorers import real_scorer, tiny_scorer


@pytest.fixture(scope="session")
def scorer():
    """The real C3D-AVG scorer, loaded once: for the tests whose subject is the model or the scoring."""
    return real_scorer()


@pytest.fixture(scope="session")
def fake_scorer():
    """The real pipeline around a network that costs nothing (tests.support.scorers.tiny_scorer):
    for the tests of what the worker does around the scoring."""
    return tiny_scorer()
