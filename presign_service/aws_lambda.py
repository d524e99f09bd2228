"""AWS Lambda entry point behind an HTTP API: handler ``presign_service.aws_lambda.handler``."""

from divescore.lambda_adapter import handler_for
from presign_service import create_app

handler = handler_for(create_app)
