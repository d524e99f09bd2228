"""The service tests: one real service (or the emulator, or a lone function runtime) against
the session's emulator. A module's services share its settings (``api_settings``: the API
limits of tests.support.api_support, and the module's ``API_SETTINGS`` overrides if it has any)."""

from __future__ import annotations

import pytest

from divescore import aws
from services.jobs_api import create_app as create_jobs_app
from services.status_api import create_app as create_status_app
from tests.support.api_support import API_SETTINGS, serve_in_thread, store_for
from tests.support.helpers import isolated_settings


@pytest.fixture(scope="module")
def api_settings(request, emulator):
    """Bootstrapped resources of the module's own, with the API tests' small limits."""
    return isolated_settings(**{**API_SETTINGS, **getattr(request.module, "API_SETTINGS", {})})


@pytest.fixture(scope="module")
def store(api_settings):
    return store_for(api_settings)


@pytest.fixture(scope="module")
def s3(api_settings):
    return aws.client("s3", api_settings)


@pytest.fixture(scope="module")
def presign(api_settings):
    """services.jobs_api served in a thread (Werkzeug); its base URL."""
    with serve_in_thread(create_jobs_app(api_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def score(api_settings):
    """services.status_api served in a thread (Werkzeug); its base URL."""
    with serve_in_thread(create_status_app(api_settings)) as url:
        yield url
