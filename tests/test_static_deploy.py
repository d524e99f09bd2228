"""`make deploy` without AWS: it stops with a clear message when a tool or the credentials are
missing, and the page's config.json points at the deployed API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from divescore.settings import Settings
from divescore.webpage import page_config
from tests.static_support import ROOT

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
