"""Check real responses against docs/openapi.yaml: the status is documented for the
operation, and the body and documented headers match their schemas."""

from __future__ import annotations

import functools
from typing import Any

import requests
import yaml
from openapi_schema_validator import OAS31Validator

from tests.support.helpers import ROOT

SPEC_PATH = ROOT / "docs" / "openapi.yaml"


@functools.cache
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def _resolve(node: Any, root: dict) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (the spec has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(target, root)
        return {key: _resolve(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, root) for value in node]
    return node


@functools.cache
def _resolved() -> dict:
    return _resolve(spec(), spec())


def check(method: str, path: str, response: requests.Response) -> None:
    """Assert that ``response`` to ``method path`` (a path template of the spec) follows it."""
    item = _resolved()["paths"][path]
    status = str(response.status_code)
    if method.lower() in item:
        documented = item[method.lower()]["responses"]
        assert status in documented, f"{method} {path} answered {status}, not documented ({', '.join(documented)})"
        expected = documented[status]
    else:  # a method the path does not have
        assert status == "405", f"{method} {path} answered {status}"
        expected = _resolved()["components"]["responses"]["MethodNotAllowed"]
    content = expected.get("content")
    if content:
        assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
        OAS31Validator(content["application/json"]["schema"]).validate(response.json())
    else:
        assert response.content == b"", f"{status} should have no body"
    for name, header in expected.get("headers", {}).items():
        assert name in response.headers, f"{method} {path} {status} lacks the {name} header"
        OAS31Validator(header["schema"]).validate(response.headers[name])
