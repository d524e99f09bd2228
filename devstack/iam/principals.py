"""IAM in the native stack: who each process is, and starting a process as itself.

With ``DIVESCORE_IAM=enforced`` (the default) the stack's start-up creates an admin user while
the emulator still lets anyone in, switches the emulator's IAM enforcement on, bootstraps the
resources with the admin key, then creates one IAM user per process (``devstack.iam.policies``:
exactly its function's role statements from the template) and writes each user's key into
``DIVESCORE_CREDENTIALS_DIR`` (a private folder). Each process is started through

    python -m devstack.iam.principals exec NAME -- COMMAND [ARG...]

which waits for NAME's key, puts it in the standard AWS variables and becomes COMMAND: the
process then signs every request, and every URL it pre-signs, with its own key.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import boto3
import requests

from devstack.iam.policies import PRINCIPALS, load_template, policy_for
from divescore.settings import Settings, SettingsError, load

ADMIN = "admin"
ALLOW_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
USER_PREFIX = "divescore-"


def _iam(endpoint: str, settings: Settings, credentials: dict[str, str]):
    return boto3.session.Session(region_name=settings.region).client(
        "iam", endpoint_url=endpoint, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
    )


def _create_user(iam, name: str, policy_name: str, policy: dict) -> dict[str, str]:
    user = USER_PREFIX + name
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def enforce(endpoint: str, settings: Settings) -> dict[str, str]:
    """Create the admin user on a fresh emulator, then turn IAM enforcement on. The admin's key."""
    anyone = {"AccessKeyId": "divescore-bootstrap", "SecretAccessKey": "divescore-bootstrap"}
    admin = _create_user(_iam(endpoint, settings, anyone), ADMIN, "everything", ALLOW_EVERYTHING)
    # moto authenticates every request once its count of unauthenticated ones reaches this.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    return admin


def create_principals(endpoint: str, settings: Settings, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """One IAM user per process, with its policy from the template; name → key."""
    iam = _iam(endpoint, settings, admin)
    account = boto3.session.Session(region_name=settings.region).client(
        "sts", endpoint_url=endpoint, aws_access_key_id=admin["AccessKeyId"],
        aws_secret_access_key=admin["SecretAccessKey"],
    ).get_caller_identity()["Account"]
    template = load_template(settings.template or None)
    return {name: _create_user(iam, name, name, policy_for(name, settings, account, template))
            for name in PRINCIPALS}


# -- the keys on disk ---------------------------------------------------------------------

def key_path(folder: str | Path, name: str) -> Path:
    return Path(folder) / f"{name}.json"


def write_key(folder: str | Path, name: str, credentials: dict[str, str]) -> None:
    """Written whole or not at all (a waiting process never reads half a key), readable by us only."""
    path = key_path(folder, name)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(credentials, f)
    partial.replace(path)


def read_key(folder: str | Path, name: str) -> dict[str, str] | None:
    try:
        return json.loads(key_path(folder, name).read_text())
    except FileNotFoundError:
        return None


def as_env(credentials: dict[str, str]) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"]}


def wait_for_key(folder: str | Path, name: str, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while (credentials := read_key(folder, name)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no access key for {name} in {folder} after {timeout:g} s (did start-up fail?)")
        time.sleep(0.1)
    return credentials


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 4 or argv[0] != "exec" or argv[1] not in PRINCIPALS or argv[2] != "--":
        print(f"usage: python -m devstack.iam.principals exec {{{','.join(PRINCIPALS)}}} -- COMMAND [ARG...]",
              file=sys.stderr)
        return 2
    name, command = argv[1], argv[3:]
    try:
        settings = load()
        credentials = wait_for_key(settings.credentials_dir, name, timeout=180)
    except (SettingsError, TimeoutError) as err:
        print(f"divescore: {err}", file=sys.stderr)
        return 2
    os.environ.update(as_env(credentials))
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
