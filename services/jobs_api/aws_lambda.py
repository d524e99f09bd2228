"""AWS Lambda entry point behind an HTTP API: handler ``services.jobs_api.aws_lambda.handler``."""

from services.jobs_api import create_app
from services.lambda_adapter import handler_for

handler = handler_for(create_app)
