"""The AWS steps of ``make deploy`` that are not SAM's (scripts/deploy.sh calls them).

    python scripts/aws_deploy.py check                 # credentials and region, or a clear stop
    python scripts/aws_deploy.py publish-web STACK     # web/ + config.json to the stack's page
    python scripts/aws_deploy.py build-template OUT    # template.yaml + the pip mirror as DockerBuildArgs

``publish-web`` writes the page's ``config.json`` with the same function the native web server
uses (:func:`standins.webpage.page_config`), pointing both API addresses at the stack's
HTTP API, uploads ``web/`` beside it, and invalidates the CloudFront cache.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# divescore is imported where the page is published: `check` runs with boto3 alone, before
# make deploy installs anything else.


class DeployError(RuntimeError):
    """Stops the deploy; the message says what to do."""


def make_session() -> boto3.session.Session:
    # boto3 reads AWS_DEFAULT_REGION, not AWS_REGION, which many people set instead.
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    try:
        return boto3.session.Session(region_name=region)
    except ProfileNotFound:
        profile = os.environ.get("AWS_PROFILE", "")
        raise DeployError(
            f"AWS_PROFILE={profile}: no such profile in the AWS config; run `aws configure --profile {profile}` "
            "(or `aws configure sso`), or unset AWS_PROFILE"
        ) from None


def check(session: boto3.session.Session) -> str:
    """The account and region the deploy would use."""
    if not session.region_name:
        raise DeployError(
            "no AWS region: set AWS_REGION (e.g. export AWS_REGION=eu-west-1) or run `aws configure`"
        )
    try:
        identity = session.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise DeployError(
            "no AWS credentials: run `aws configure` (or `aws sso login`), or set AWS_PROFILE, "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (ClientError, BotoCoreError) as err:
        raise DeployError(
            f"the AWS credentials do not work ({err}); renew them and run make deploy again"
        ) from None
    return f"account {identity['Account']} ({identity['Arn']}), region {session.region_name}"


def stack_outputs(session: boto3.session.Session, stack: str) -> dict[str, str]:
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as err:
        raise DeployError(f"stack {stack} not found ({err}); run make deploy first") from None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def config_json(api_url: str) -> bytes:
    """The page's config.json for a deployment whose two APIs share one address."""
    from divescore.settings import load
    from standins.webpage import page_config

    settings = load({}, presign_api_url=api_url, score_api_url=api_url)
    return json.dumps(page_config(settings), indent=2).encode()


def publish_web(session: boto3.session.Session, stack: str, web_dir: Path | None = None) -> str:
    from standins.webpage import WEB_DIR

    web_dir = web_dir or WEB_DIR
    outputs = stack_outputs(session, stack)
    bucket, api_url = outputs["WebBucketName"], outputs["ApiUrl"]
    s3 = session.client("s3")
    # The page revalidates every file (ETag → 304), as the native web server tells it to, so a
    # new deploy is seen at once.
    for path in sorted(p for p in web_dir.rglob("*") if p.is_file()):
        key = path.relative_to(web_dir).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.upload_file(
            str(path), bucket, key, ExtraArgs={"ContentType": content_type, "CacheControl": "no-cache"}
        )
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=config_json(api_url),
        ContentType="application/json",
        CacheControl="no-cache",
    )
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["WebDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )
    return outputs["WebUrl"]


PIP_INDEX_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")
IMAGE_DOCKERFILE_LINE = "      Dockerfile: lambda_image/Dockerfile\n"


def template_with_build_args(template: str, environ: dict[str, str]) -> str:
    """template.yaml with the package index settings set in ``environ`` as the inference
    image's SAM ``DockerBuildArgs`` (Metadata cannot read parameters, so they are written in)."""
    args = {name: environ[name] for name in PIP_INDEX_VARIABLES if environ.get(name)}
    if not args:
        return template
    if template.count(IMAGE_DOCKERFILE_LINE) != 1:
        raise DeployError("template.yaml: cannot find the inference image's Metadata "
                          "(Dockerfile: lambda_image/Dockerfile)")
    block = "      DockerBuildArgs:\n" + "".join(f"        {k}: {json.dumps(v)}\n" for k, v in args.items())
    return template.replace(IMAGE_DOCKERFILE_LINE, IMAGE_DOCKERFILE_LINE + block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check the AWS credentials and region")
    publish = sub.add_parser("publish-web", help="upload the web page and its config.json")
    publish.add_argument("stack", help="CloudFormation stack name, e.g. divescore-dev")
    build = sub.add_parser("build-template", help="write template.yaml with the pip mirror as DockerBuildArgs")
    build.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build-template":
        try:
            args.out.write_text(template_with_build_args((ROOT / "template.yaml").read_text(), dict(os.environ)))
        except DeployError as err:
            print(f"deploy: {err}", file=sys.stderr)
            return 1
        return 0
    try:
        session = make_session()
        if args.command == "check":
            print(f"deploying as {check(session)}")
        else:
            print(f"web page published: {publish_web(session, args.stack)}")
    except DeployError as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
