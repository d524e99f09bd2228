"""How each HTTP service runs under gunicorn: the one command line, used by the native stack,
the compose file and the tests.

    python -m standins.serving status_api     # exec gunicorn with the settings from the environment

Each listens on ``DIVESCORE_HOST`` and its port setting (compose sets the host to 0.0.0.0).

Both services use threaded workers (gthread): a long-poll holds its thread for up to
``max_wait_seconds`` while it sleeps between reads, so the status API needs many threads.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from divescore.settings import Settings, load_or_exit


@dataclasses.dataclass(frozen=True)
class Serving:
    app: str  # module:attribute of the WSGI app
    port_setting: str
    workers: int
    threads: int


SERVICES = {
    "jobs_api": Serving("services.jobs_api.wsgi:app", port_setting="presign_port", workers=2, threads=4),
    # Each waiting request holds a thread: 2 x 16 concurrent long-polls per instance.
    "status_api": Serving("services.status_api.wsgi:app", port_setting="score_port", workers=2, threads=16),
    "webpage": Serving("standins.webpage:app", port_setting="web_port", workers=1, threads=4),
}


def gunicorn_command(service: str, settings: Settings) -> list[str]:
    """The argv that serves ``service`` on ``settings.host`` and its port setting.

    The child process needs ``settings.to_env()`` (and the AWS variables) in its environment:
    its ``wsgi`` module loads the settings from there.
    """
    serving = SERVICES[service]
    port = getattr(settings, serving.port_setting)
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{settings.host}:{port}",
        # gthread, answering what gunicorn itself refuses as JSON (standins.json_errors)
        "--worker-class", "standins.json_errors.JsonErrorsWorker",
        "--workers", str(serving.workers),
        "--threads", str(serving.threads),
        # gthread workers heartbeat between requests, so a long-poll never trips this.
        "--timeout", "60",
        # On shutdown, let running long-polls answer first.
        "--graceful-timeout", str(settings.max_wait_seconds + 5),
        "--keep-alive", "5",
        # The default socket path is shared by every gunicorn of the user.
        "--no-control-socket",
        # The app logs each request itself, as JSON with its request id; gunicorn's own start-up
        # lines only when asked for.
        "--error-logfile", "-",
        "--log-level", "info" if settings.verbose else "warning",
        # No proxy stands in front: X-Forwarded-* headers are anyone's words, trusted from no one
        # (gunicorn's default trusts them from 127.0.0.1, which is every client of the native stack).
        "--forwarded-allow-ips", "",
        serving.app,
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m standins.serving {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    settings = load_or_exit()
    command = gunicorn_command(argv[0], settings)
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
