"""`make deploy` without AWS: it stops with a clear message when a tool or the credentials are
missing, and the page's config.json points at the deployed API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from divescore.settings import Settings
from standins.webpage import page_config
from tests.support.static_support import ROOT

DEPLOY = ROOT / "scripts" / "deploy.sh"
AWS_DEPLOY = ROOT / "scripts" / "aws_deploy.py"


def without_aws(tmp_path) -> dict[str, str]:
    """An environment with no AWS credentials anywhere boto3 would look."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DIVESCORE_"))}
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": "us-east-1",
        }
    )
    return env


def test_deploy_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(DEPLOY)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_deploy_stops_before_building_when_sam_is_missing(tmp_path):
    # GIVEN a PATH with only what the script needs before its checks (so no sam, no docker)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    env = {**without_aws(tmp_path), "PATH": str(bin_dir), "PY": sys.executable}
    # WHEN make deploy runs the script THEN it stops at once, saying what to install
    result = subprocess.run(
        [shutil.which("bash"), str(DEPLOY)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert "AWS SAM CLI (sam) is not installed" in result.stderr
    assert result.stdout == ""


def test_deploy_refuses_a_wildcard_origin(tmp_path):
    env = {**without_aws(tmp_path), "WEB_ORIGIN": "*", "PY": sys.executable}
    result = subprocess.run(
        ["bash", str(DEPLOY)], check=False, capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 1
    assert "WEB_ORIGIN=*" in result.stderr


def test_credentials_check_names_the_fix_when_there_are_none(tmp_path):
    result = subprocess.run(
        [sys.executable, str(AWS_DEPLOY), "check"],
        check=False,
        capture_output=True,
        text=True,
        env=without_aws(tmp_path),
        timeout=60,
    )
    assert result.returncode == 1
    assert "no AWS credentials" in result.stderr
    assert "aws configure" in result.stderr


def test_credentials_check_passes_with_working_credentials(tmp_path, emulator):
    # moto answers STS like AWS does for any credentials it is given.
    env = {**without_aws(tmp_path), **emulator.env}
    result = subprocess.run(
        [sys.executable, str(AWS_DEPLOY), "check"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "deploying as account" in result.stdout
    assert "region us-east-1" in result.stdout


def test_the_deployed_page_is_told_the_api_address():
    sys.path.insert(0, str(AWS_DEPLOY.parent))
    try:
        import aws_deploy
    finally:
        sys.path.remove(str(AWS_DEPLOY.parent))
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    config = json.loads(aws_deploy.config_json(api))
    # The same fields the native web server serves, with the API address of the stack.
    assert config == page_config(Settings(presign_api_url=api, score_api_url=api))
    assert config["presign_api_url"] == config["score_api_url"] == api
    assert config["content_types"] == list(Settings().content_types)


def test_a_profile_that_does_not_exist_is_one_line(tmp_path):
    env = {**without_aws(tmp_path), "AWS_PROFILE": "no-such-profile"}
    result = subprocess.run([sys.executable, str(AWS_DEPLOY), "check"], check=False, capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("deploy: AWS_PROFILE=no-such-profile: no such profile")


def test_the_credentials_check_runs_with_boto3_alone(tmp_path):
    """deploy.sh checks the credentials before it installs anything but boto3."""
    script = (
        "import runpy, sys\n"
        "for name in ('flask', 'torch', 'moto', 'playwright', 'divescore'):\n"
        "    sys.modules[name] = None  # importing any of them fails\n"
        f"sys.argv = [{str(AWS_DEPLOY)!r}, 'check']\n"
        f"runpy.run_path({str(AWS_DEPLOY)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            env=without_aws(tmp_path), timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("deploy: no AWS credentials"), result.stderr


def test_make_deploy_does_not_install_the_development_environment():
    makefile = (ROOT / "Makefile").read_text()
    [rule] = [line for line in makefile.splitlines() if line.startswith("deploy:")]
    assert rule.strip() == "deploy:", "make deploy must not depend on the dev install ($(STAMP))"
    script = DEPLOY.read_text()
    # Tools first, then boto3 alone, the credentials, and only then the project's dependencies.
    order = [script.index(s) for s in ("command -v sam", "command -v docker", "pins.py boto3",
                                       "aws_deploy.py check", "pins.py --base) >")]
    assert order == sorted(order)
    assert "model" not in script.split("pins.py")[1].split("\n")[0]


def test_pins_name_a_base_dependency_alone():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "pins.py"), "boto3"], check=True,
                            capture_output=True, text=True)
    assert result.stdout.split() == [r for r in _project()["dependencies"] if r.startswith("boto3==")]


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _fake_docker(tmp_path, version: str | None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sort", "head", "printf"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    if version is not None:
        docker = bin_dir / "docker"
        docker.write_text(f"#!{shutil.which('bash')}\n[[ \"$*\" == 'compose version --short' ]] && echo {version}\n")
        docker.chmod(0o755)
    return {"PATH": str(bin_dir)}


def check_compose(tmp_path, version: str | None) -> subprocess.CompletedProcess:
    tmp_path.mkdir()
    return subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "check_compose.sh")], check=False,
                          capture_output=True, text=True, env=_fake_docker(tmp_path, version), timeout=30)


def test_make_up_needs_compose_2_17_and_says_so(tmp_path):
    old = check_compose(tmp_path / "old", "2.16.0")
    assert old.returncode == 1
    assert "Docker Compose 2.16.0 is too old: 2.17.0 or later" in old.stderr
    new = check_compose(tmp_path / "new", "v2.29.7")
    assert new.returncode == 0, new.stderr
    assert "2.29.7" in new.stdout
    none = check_compose(tmp_path / "none", None)
    assert none.returncode == 1
    assert "needs Docker with Compose v2" in none.stderr
    assert "scripts/check_compose.sh" in (ROOT / "Makefile").read_text().split("\nup:")[1].split("\n\n")[0]


def test_a_package_mirror_reaches_the_image_builds(tmp_path):
    out = tmp_path / "template.yaml"
    env = {**without_aws(tmp_path), "PIP_INDEX_URL": "https://mirror.example/simple",
           "PIP_TRUSTED_HOST": "mirror.example"}
    subprocess.run([sys.executable, str(AWS_DEPLOY), "build-template", str(out)], check=True, env=env, timeout=60)
    from tests.support.static_support import load_template

    metadata = load_template(out)["Resources"]["InferenceFunction"]["Metadata"]
    assert metadata["DockerBuildArgs"] == {"PIP_INDEX_URL": "https://mirror.example/simple",
                                           "PIP_TRUSTED_HOST": "mirror.example"}
    # Without a mirror the template is used as it is.
    subprocess.run([sys.executable, str(AWS_DEPLOY), "build-template", str(out)], check=True,
                   env=without_aws(tmp_path), timeout=60)
    assert out.read_text() == (ROOT / "template.yaml").read_text()
    assert "sam build --template-file .template.deploy.yaml" in DEPLOY.read_text()
    # Both images read the same settings as build arguments; pip takes them from the environment.
    for dockerfile in ("lambda_image/Dockerfile", "docker/services.Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
            assert f"ARG {name}\n" in text, (dockerfile, name)
            assert text.index(f"ARG {name}") < text.index("pip install"), (dockerfile, name)


def test_compose_passes_the_package_mirror_to_both_image_builds():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("presign", "inference"):
        args = compose["services"][name]["build"]["args"]
        assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"} <= set(args), name


def test_the_models_readme_describes_what_the_builds_and_the_template_do():
    """Every way lambda_image/models/README.md gives to ship real checkpoints exists."""
    from tests.support.static_support import load_template

    readme = (ROOT / "lambda_image" / "models" / "README.md").read_text()
    dockerfile = (ROOT / "lambda_image" / "Dockerfile").read_text()
    assert "COPY lambda_image/models/ /opt/divescore/models/" in dockerfile
    assert "--build-arg" not in readme  # the checkpoints need none (there is no MODEL_DIR build argument)
    template = load_template()
    assert "checkpoints" in template["Parameters"]["ModelWeights"]["AllowedValues"]
    model_dir = template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]
    assert "/opt/divescore/models" in str(model_dir["DIVESCORE_MODEL_DIR"])
    assert "MODEL_WEIGHTS=checkpoints make deploy" in readme and "MODEL_WEIGHTS" in DEPLOY.read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "MODEL_DIR=/opt/divescore/models make up" in readme and "DIVESCORE_MODEL_DIR: ${MODEL_DIR:-}" in compose
