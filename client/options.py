"""Command-line options shared by ``divescore submit`` and ``divescore status``: where the
API is. Defaults come from the settings (``DIVESCORE_PRESIGN_API_URL``,
``DIVESCORE_SCORE_API_URL``); flags override them."""

from __future__ import annotations

import argparse

from client.api import ApiClient
from divescore.settings import load


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the API is (default: the settings' presign_api_url and score_api_url)")
    group.add_argument("--api-url", metavar="URL",
                       help="one address serving both APIs (an API Gateway stage); sets both below")
    group.add_argument("--presign-url", metavar="URL", help="address of the presign API (POST /v1/jobs)")
    group.add_argument("--score-url", metavar="URL", help="address of the score API (GET /v1/jobs/{id})")
    parser.add_argument("--json", action="store_true", help="print one JSON object per job, nothing else on stdout")


def api_client(args: argparse.Namespace) -> ApiClient:
    """The client the arguments point at. Raises SettingsError for a bad DIVESCORE_* variable."""
    presign_url = args.presign_url or args.api_url
    score_url = args.score_url or args.api_url
    if not (presign_url and score_url):
        settings = load()
        presign_url = presign_url or settings.presign_api_url
        score_url = score_url or settings.score_api_url
    return ApiClient(presign_url, score_url)
