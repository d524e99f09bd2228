"""AWS Lambda entry point behind an HTTP API: handler ``score_service.aws_lambda.handler``."""

from divescore.lambda_adapter import handler_for
from score_service import create_app

handler = handler_for(create_app)
