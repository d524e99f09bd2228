"""Print pinned requirements taken from pyproject.toml, one per line, for `pip install -r`.

The images and the API functions' zip install exactly the versions pyproject.toml pins,
before the source is copied (so the dependency layer stays cached), without a second list
of versions to keep in step.

    python scripts/pins.py --base gunicorn   # the project's dependencies + the gunicorn pin
    python scripts/pins.py torch             # only the torch pin (from the "model" extra)
    python scripts/pins.py --base model      # the dependencies + the whole "model" extra

A NAME is an extra (all of it) or a package named in the dependencies or some extra (its pin
alone): ``python scripts/pins.py boto3``.
Standard library only: it runs on a bare python image.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

# The repository's pyproject.toml, or the one copied beside this script (the Dockerfiles copy
# both into /tmp/build/, where the repository's layout does not hold).
_HERE = Path(__file__).resolve().parent
DEFAULT_PYPROJECT = next(
    (p for p in (_HERE / "pyproject.toml", _HERE.parent / "pyproject.toml") if p.is_file()),
    _HERE.parent / "pyproject.toml",
)


def package_name(requirement: str) -> str:
    """``moto[server]==5.2.5`` → ``moto`` (normalised as in PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def pins(project: dict, names: list[str], *, base: bool) -> list[str]:
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    chosen = list(project.get("dependencies", [])) if base else []
    for name in names:
        if name in extras:
            chosen.extend(extras[name])
            continue
        every = [*project.get("dependencies", []), *(r for reqs in extras.values() for r in reqs)]
        found = [r for r in every if package_name(r) == package_name(name)]
        if not found:
            raise KeyError(f"{name}: neither an extra nor a package of pyproject.toml")
        chosen.append(found[0])
    unpinned = [r for r in chosen if "==" not in r]
    if unpinned:
        raise ValueError(f"not pinned with ==: {', '.join(unpinned)}")
    return list(dict.fromkeys(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="an extra or a package named in an extra")
    parser.add_argument("--base", action="store_true", help="include the project's own dependencies")
    parser.add_argument("--pyproject", type=Path, default=DEFAULT_PYPROJECT)
    args = parser.parse_args(argv)
    project = tomllib.loads(args.pyproject.read_text())["project"]
    try:
        lines = pins(project, args.names, base=args.base)
    except (KeyError, ValueError) as err:
        print(f"pins: {err.args[0]}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
