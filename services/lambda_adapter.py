"""Run a service's Flask app inside AWS Lambda behind an API Gateway HTTP API (payload v2).

The same app that gunicorn serves locally: apig-wsgi turns the API Gateway event into a WSGI
request and the response back into the event API Gateway expects. The app is built once, at
cold start, from the function's environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apig_wsgi import make_lambda_handler
from flask import Flask

from divescore.settings import Settings, load

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def wrap(app: Flask) -> LambdaHandler:
    # Every response is JSON text; nothing needs base64.
    return make_lambda_handler(app, binary_support=False)


def handler_for(create_app: Callable[[Settings], Flask]) -> LambdaHandler:
    """The Lambda handler of the service that ``create_app`` builds, configured from the environment."""
    return wrap(create_app(load()))
