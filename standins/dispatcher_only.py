"""The function as the laptop stacks run it: ``standins.dispatcher_only.handler`` in front of
the function's own handler (named by ``STANDINS_FUNCTION_HANDLER``, the production one by default). An
invocation without the dispatcher's key (:mod:`standins.dispatcher_key`) is refused before the
function sees it: anyone on the machine can reach a runtime's port, while on AWS only the
event source mapping invokes the function.

Importing this module imports the wrapped handler: the function's cold start happens here.
"""

from __future__ import annotations

import importlib
import logging
import os

from standins import dispatcher_key

REFUSAL = {"errorType": "InvocationRefused", "errorMessage": "only the stack's dispatcher may invoke this function"}

log = logging.getLogger("standins.dispatcher_only")


def _load(name: str):
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


_key = dispatcher_key.from_env()
_function = _load(os.environ.get(dispatcher_key.GUARDED_HANDLER_ENV) or "inference.handler.handler")


def handler(event, context):
    if not dispatcher_key.carried_by(context, _key):
        log.warning("refused an invocation without the dispatcher's key")
        return dict(REFUSAL)
    context.client_context = None  # the function gets what Lambda's event source mapping gives it
    return _function(event, context)
