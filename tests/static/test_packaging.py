"""`pip install .` (not editable) gives a working divescore: the wheel, installed into a fresh
virtual environment and run from a folder outside the checkout, so nothing is imported from
the source tree."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

# What the wheel is built from (pyproject.toml's packages and package-dir).
SOURCES = ("pyproject.toml", "README.md", "divescore", "services", "standins", "devstack", "client", "web",
           "lambda_image/inference")
PACKAGES = ("divescore", "services", "services.jobs_api", "services.status_api", "services.sweep", "services.notifier",
            "inference", "inference.video", "standins", "standins.web", "devstack", "devstack.iam", "client")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding the wheel alone; its dependencies come from this environment's
    site-packages (a path, so none of its .pth files, such as the editable install, apply)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (ROOT / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(source)], check=True, capture_output=True)
    [wheel] = (root / "dist").glob("divescore-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    venv_site = next((venv / "lib").glob("python3*/site-packages"))
    (venv_site / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_runs_from_the_wheel(installed, tmp_path):
    submit = run(installed, "divescore", "submit", "--help", cwd=tmp_path)
    assert submit.returncode == 0, submit.stderr
    assert "usage:" in submit.stdout
    settings = run(installed, "divescore", "settings", cwd=tmp_path)
    assert settings.returncode == 0, settings.stderr
    assert "DIVESCORE_MAX_UPLOAD_BYTES" in settings.stdout


def test_every_package_imports_from_the_wheel_and_the_page_is_served(installed, tmp_path):
    script = (
        "import importlib, pathlib\n"
        f"for name in {PACKAGES!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    print(name, pathlib.Path(module.__path__[0]).resolve())\n"
        "from standins.webpage import create_app\n"
        "page = create_app().test_client().get('/')\n"
        "assert page.status_code == 200 and b'<html' in page.data.lower(), page.status_code\n"
    )
    result = run(installed, "python", "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    locations = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert set(locations) == set(PACKAGES)
    for name, location in locations.items():
        assert Path(location).is_relative_to(installed), f"{name} imported from {location}, not the wheel"
