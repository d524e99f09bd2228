"""The Lambda entry point: ``inference.handler.handler``.

Importing this module is the function's cold start: settings from the environment, the AWS
clients and the model (weights memory-mapped) are made here once, never per invocation.
"""

from divescore.settings import load
from inference.worker import Services, handle_event, logger

settings = load()
logger.setLevel(settings.log_level)
services = Services.create(settings)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context) -> dict:
    return handle_event(event, services, context)
