"""The key only the laptop stacks' dispatcher holds. It invokes the function runtimes with it;
their guard (:mod:`standins.dispatcher_only`) refuses every invocation without it.

A Runtime Interface Emulator listens on a TCP port that anyone on the machine can reach, and a
web page can POST to it blind. On AWS only the event source mapping invokes the function, so
the production handler knows nothing of this key. The key rides in the invocation's client
context (the RIE passes its ``X-Amz-Client-Context`` header to the handler as
``context.client_context``), so the event stays the one Lambda sends; a page cannot set that
header without a CORS preflight, which the RIE never grants. Stdlib only: the function's
container runs it.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets

ENV = "STANDINS_DISPATCHER_KEY"
_FIELD = "dispatcher_key"
# A runtime behind the guard: the handler the RIE runs, and the variable naming the function's own.
GUARD = "standins.dispatcher_only.handler"
GUARDED_HANDLER_ENV = "STANDINS_FUNCTION_HANDLER"


def new() -> str:
    return secrets.token_hex(32)


def from_env() -> str:
    return os.environ.get(ENV, "")


def invocation_headers(key: str) -> dict[str, str]:
    """What the dispatcher adds to an invocation to carry ``key`` (nothing without one)."""
    if not key:
        return {}
    context = json.dumps({"custom": {_FIELD: key}})
    return {"X-Amz-Client-Context": base64.b64encode(context.encode()).decode()}


def carried_by(context, key: str) -> bool:
    """Whether the invocation of ``context`` carries ``key``; never with no key set."""
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    offered = custom.get(_FIELD) if isinstance(custom, dict) else None
    return bool(key) and isinstance(offered, str) and hmac.compare_digest(offered.encode(), key.encode())
