"""``make run``: the whole stack natively, no Docker, under honcho.

    python -m devstack [--without NAME ...]

With DIVESCORE_IAM=enforced (the default) each process runs with its own access key, whose
policy is its function's role in template.yaml (devstack.iam.principals, devstack.iam.policies).

Processes: the AWS emulator (moto server: S3, SQS, DynamoDB), one Lambda Runtime Interface
Emulator per function runtime running ``python -m awslambdaric`` (the function behind a guard
that answers only the dispatcher: standins.dispatcher_only), the dispatcher, the sweep
(jobs lost on their last attempt), the notifier (webhooks), the two API services under
gunicorn and the web page.
Their output is one stream, each line prefixed by the process's name. Ctrl-C stops every
process (honcho signals each process group, then kills what is left after 5 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from honcho.printer import Printer

from devstack.holds import HOLD_DIR_ENV
from devstack.iam import principals
from devstack.ports import free_ports
from divescore.settings import Settings, SettingsError, env_name, load
from standins import bootstrap, dispatcher_key
from standins.serving import gunicorn_command

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_ROOT = ROOT / "lambda_image"
HANDLER = "inference.handler.handler"
# The same function with test holds (devstack.holds), when the stack is given a hold folder.
HOLDING_HANDLER = "devstack.holding_function.handler"
BIN = Path(sys.executable).parent


class StartupError(RuntimeError):
    """Something stops the stack from starting; the message is one line naming the cause."""


def stack_settings(environ=None) -> Settings:
    """Settings for the native stack: addresses that follow the chosen host and ports unless set."""
    environ = os.environ if environ is None else environ
    settings = load(environ)
    derived = {}
    if env_name("presign_api_url") not in environ:
        derived["presign_api_url"] = f"http://{settings.host}:{settings.presign_port}"
    if env_name("score_api_url") not in environ:
        derived["score_api_url"] = f"http://{settings.host}:{settings.score_port}"
    if env_name("cors_origins") not in environ:
        derived["cors_origins"] = (f"http://{settings.host}:{settings.web_port}", f"http://localhost:{settings.web_port}")
    if env_name("s3_addressing_style") not in environ:
        derived["s3_addressing_style"] = "path"
    return load(environ, **derived)


def emulator_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.emulator_port}"


def child_env(settings: Settings, environ=None) -> dict[str, str]:
    """What every process of the stack sees: our settings, and AWS pointed at the emulator
    with throw-away credentials (so a developer's real credentials are never used)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if not k.startswith(("DIVESCORE_", "AWS_")) and k != dispatcher_key.ENV}
    env.update(settings.to_env())
    env.update({
        "AWS_ENDPOINT_URL": emulator_url(settings),
        "AWS_ACCESS_KEY_ID": "divescore-local",
        "AWS_SECRET_ACCESS_KEY": "divescore-local",
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def function_env(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """The environment the Lambda image would give the function, and the handler the
    dispatcher-only guard runs (the runtime runs ``dispatcher_key.GUARD``)."""
    return {
        **env,
        dispatcher_key.GUARDED_HANDLER_ENV: function_handler(env),
        "LAMBDA_TASK_ROOT": str(FUNCTION_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": settings.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(settings.function_timeout_seconds),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.function_memory_mb),
        # Runtimes side by side share the cores: torch's default (every core each) makes them
        # fight, and `make bench` measured 2 runtimes x 1 thread 1.5x faster than 2 x 2.
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // settings.runtimes)),
    }


def as_principal(settings: Settings, principal: str, command: str) -> str:
    """``command`` started with the access key of ``principal`` (see devstack.iam.principals)."""
    if settings.iam != "enforced":
        return command
    return shlex.join([sys.executable, "-m", "devstack.iam.principals", "exec", principal, "--"]) + " " + command


def function_handler(env: dict[str, str]) -> str:
    return HOLDING_HANDLER if env.get(HOLD_DIR_ENV) else HANDLER


def processes(settings: Settings, environ=None, key: str = "") -> dict[str, tuple[str, dict[str, str], str | None]]:
    """name → (command, environment, working directory) of every process of the stack; only the
    dispatcher and the function runtimes hold the dispatcher's ``key``."""
    env = child_env(settings, environ)
    keyed = {**env, dispatcher_key.ENV: key}
    table = {
        "emulator": (
            # moto's server, with pre-signed URL signatures kept out of its request log
            shlex.join([sys.executable, "-m", "devstack.emulator", "-H", settings.host, "-p",
                        str(settings.emulator_port), *([] if settings.verbose else ["--quiet"])]), env, None
        ),
    }
    rie = BIN / "aws-lambda-rie"
    # Each RIE also serves the Runtime API to its runtime, by default on a fixed port (9001), so
    # runtimes side by side each need their own, apart from the stack's.
    api_ports = free_ports(settings.runtimes, besides=[port for port, _ in stack_ports(settings).values()])
    for i in range(settings.runtimes):
        address = f"{settings.host}:{settings.runtime_port + i}"
        runtime_api = f"127.0.0.1:{api_ports[i]}"
        table[f"function-{i}"] = (
            as_principal(settings, "function", shlex.join([
                str(rie), "--runtime-interface-emulator-address", address, "--runtime-api-address", runtime_api,
                "--log-level", "info" if settings.verbose else "error",
                sys.executable, "-m", "awslambdaric", dispatcher_key.GUARD,
            ])),
            function_env(settings, keyed),
            str(FUNCTION_ROOT),
        )
    for name, module in (("dispatcher", "standins.dispatcher"), ("sweep", "services.sweep"),
                         ("notifier", "services.notifier")):
        table[name] = (as_principal(settings, name, shlex.join([sys.executable, "-m", module])),
                       keyed if name == "dispatcher" else env, None)
    for name, service in (("presign", "jobs_api"), ("score", "status_api")):
        table[name] = (as_principal(settings, name, shlex.join(gunicorn_command(service, settings))), env, None)
    table["web"] = (shlex.join(gunicorn_command("webpage", settings)), env, None)
    return table


def stack_ports(settings: Settings) -> dict[str, tuple[int, str]]:
    """setting name → (port, the process that listens on it)"""
    ports = {
        "emulator_port": (settings.emulator_port, "emulator"), "web_port": (settings.web_port, "web"),
        "presign_port": (settings.presign_port, "presign"), "score_port": (settings.score_port, "score"),
    }
    ports.update({f"runtime_port (+{i})": (settings.runtime_port + i, f"function-{i}")
                  for i in range(settings.runtimes)})
    return ports


def check_ports(settings: Settings, without: frozenset[str] = frozenset()) -> None:
    """Every port is distinct, and free unless its process is left out (``without``): a test
    may run its own emulator or runtime on it."""
    seen: dict[int, str] = {}
    for name, (port, process) in stack_ports(settings).items():
        setting = env_name(name.split(" ")[0]) + name[len(name.split(" ")[0]):]
        if port in seen:
            raise StartupError(f"{setting}: port {port} is also used by {seen[port]}; choose another port")
        seen[port] = setting
        if process in without:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers themselves bind: the TIME_WAIT sockets of a stack just stopped
            # do not make its ports "in use", so `make run` right after Ctrl-C starts.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.host, port))
            except OSError:
                raise StartupError(
                    f"{setting}: port {port} on {settings.host} is in use; stop what uses it or choose another port"
                ) from None


def check_installed() -> None:
    if not (BIN / "aws-lambda-rie").exists():
        raise StartupError("the Lambda Runtime Interface Emulator is not installed: run `make install`")


def wait_for(url: str, deadline: float, what: str) -> None:
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise StartupError(f"{what} did not come up at {url}") from None
            time.sleep(0.1)


def model_label(settings: Settings) -> str:
    if settings.model_dir:
        return f"checkpoints in {settings.model_dir}"
    return "generated UNTRAINED weights (scores are not real judgements)"


def iam_label(settings: Settings) -> str:
    if settings.iam == "enforced":
        return (f"enforced: each process has only its role's permissions from "
                f"{settings.template or 'template.yaml'} ({env_name('iam')}=off turns this off)")
    return f"OFF ({env_name('iam')}=off): every process may do anything, unlike on AWS"


def prepare_and_announce(settings: Settings, env: dict[str, str], skip: set[str], failed: threading.Event,
                         dispatching: threading.Event) -> None:
    """Runs beside honcho: bootstrap the resources once the emulator answers, wait until every
    service is healthy, then print where things are."""
    deadline = time.monotonic() + 120
    try:
        wait_for(emulator_url(settings), deadline, "the AWS emulator")
        admin = None
        if settings.iam == "enforced":
            admin = principals.enforce(emulator_url(settings), settings)
            env = {**env, **principals.as_env(admin)}
        previous = {k: os.environ.get(k) for k in env if k.startswith("AWS_")}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        try:
            bootstrap.bootstrap(settings)
            if admin is not None:
                keys = principals.create_principals(emulator_url(settings), settings, admin)
                for name, credentials in {principals.ADMIN: admin, **keys}.items():
                    principals.write_key(settings.credentials_dir, name, credentials)
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        for name, port in (("presign", settings.presign_port), ("score", settings.score_port),
                           ("web", settings.web_port)):
            if name not in skip:
                wait_for(f"http://{settings.host}:{port}/healthz", deadline, f"the {name} service")
        # The banner comes last: once the dispatcher has warmed the runtimes and takes jobs.
        if not dispatching.wait(max(0.0, deadline - time.monotonic())):
            raise StartupError("the dispatcher did not start feeding the runtimes in time")
    except Exception as err:  # reported, then the whole stack is stopped
        print(f"divescore: start-up failed: {err}", file=sys.stderr, flush=True)
        failed.set()
        os.kill(os.getpid(), 15)
        return
    # One write call: honcho's thread prints the processes' lines to the same stream, and
    # print() writes its text and its newline apart, so a line could land between them.
    sys.stdout.write(
        "\n"
        f"  divescore is running (native stack)\n"
        f"  web page      http://{settings.host}:{settings.web_port}/\n"
        f"  presign API   {settings.presign_api_url}\n"
        f"  score API     {settings.score_api_url}\n"
        f"  AWS emulator  {emulator_url(settings)}  (S3 bucket {settings.bucket}, queue {settings.queue}, "
        f"table {settings.table})\n"
        f"  runtimes      {settings.runtimes}\n"
        f"  IAM           {iam_label(settings)}\n"
        f"  model         {model_label(settings)}\n"
        "  Ctrl-C stops everything.\n"
        "divescore ready\n"
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--without", action="append", default=[], metavar="NAME",
                        help="leave one process out (tests run their own), e.g. --without dispatcher")
    args = parser.parse_args(argv)
    try:
        settings = stack_settings()
        check_installed()
        check_ports(settings, frozenset(args.without))
    except (SettingsError, StartupError) as err:
        print(f"divescore: {err}", file=sys.stderr)
        return 2
    own_keys_folder = settings.iam == "enforced" and not settings.credentials_dir
    if own_keys_folder:
        settings = dataclasses.replace(settings, credentials_dir=tempfile.mkdtemp(prefix="divescore-keys-"))
    try:
        return run(settings, args.without, dispatcher_key.from_env() or dispatcher_key.new())
    finally:
        if own_keys_folder:
            shutil.rmtree(settings.credentials_dir, ignore_errors=True)


class ReadyWatcher(Printer):
    """honcho's printer, which also notes when the dispatcher says it is ready."""

    def __init__(self, dispatching: threading.Event):
        super().__init__(sys.stdout)
        self.dispatching = dispatching

    def write(self, message) -> None:
        super().write(message)
        if message.type == "line" and message.name == "dispatcher":
            data = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
            if data.strip() == "dispatcher ready":
                self.dispatching.set()


def run(settings: Settings, without: list[str], key: str) -> int:
    """Every process under honcho until Ctrl-C (or one of them stops); ``key`` is the
    dispatcher's (a stack's own, so that only its dispatcher invokes its runtimes)."""
    from honcho.manager import Manager

    table = processes(settings, key=key)
    unknown = set(without) - set(table)
    if unknown:
        print(f"divescore: --without {', '.join(sorted(unknown))}: no such process ({', '.join(table)})",
              file=sys.stderr)
        return 2
    dispatching = threading.Event()
    if "dispatcher" in without:
        dispatching.set()
    manager = Manager(printer=ReadyWatcher(dispatching))
    for name, (command, env, cwd) in table.items():
        if name not in without:
            manager.add_process(name, "exec " + command, env=env, cwd=cwd)
    failed = threading.Event()
    threading.Thread(
        target=prepare_and_announce, args=(settings, child_env(settings), set(without), failed, dispatching),
        daemon=True
    ).start()
    manager.loop()
    if failed.is_set():
        return 1
    return 0 if manager.returncode in (None, 0, 130, 143) else manager.returncode


if __name__ == "__main__":
    sys.exit(main())
