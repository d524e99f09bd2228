"""AWS Lambda entry point behind an HTTP API: handler ``services.status_api.aws_lambda.handler``."""

from services.lambda_adapter import handler_for
from services.status_api import create_app

handler = handler_for(create_app)
