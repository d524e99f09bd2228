#!/usr/bin/env bash
# `make deploy`: build and deploy template.yaml with AWS SAM, then publish the web page with the
# API address injected. See docs/deploy.md.
#
#   STAGE=dev WEB_ORIGIN=https://dive.example.org make deploy
#
# STAGE       suffix of every resource name and of the stack name divescore-$STAGE (default dev)
# WEB_ORIGIN  the page's origin for CORS; default auto: the CloudFront address of this stack
# MODEL_WEIGHTS  generated (default, untrained) or checkpoints (from lambda_image/models/)
# PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST  a package mirror, for this script's pip
#             and for the image builds (passed as Docker build arguments)
set -euo pipefail

cd "$(dirname "$0")/.."
STAGE="${STAGE:-dev}"
WEB_ORIGIN="${WEB_ORIGIN:-auto}"
MODEL_WEIGHTS="${MODEL_WEIGHTS:-generated}"
STACK="divescore-${STAGE}"
# The SAM CLI and boto3 read AWS_DEFAULT_REGION; many people set AWS_REGION.
if [[ -n "${AWS_REGION:-}" && -z "${AWS_DEFAULT_REGION:-}" ]]; then export AWS_DEFAULT_REGION="$AWS_REGION"; fi

die() { echo "deploy: $*" >&2; exit 1; }

# -- what the deploy needs, checked before anything is built --------------------------------
[[ "$STAGE" =~ ^[a-z0-9-]{1,12}$ ]] || die "STAGE=$STAGE: use 1 to 12 lower-case letters, digits or dashes"
[[ "$WEB_ORIGIN" == auto || "$WEB_ORIGIN" =~ ^https?://[^/*]+$ ]] \
    || die "WEB_ORIGIN=$WEB_ORIGIN: give an origin such as https://dive.example.org (no path, no *), or auto"
[[ "$MODEL_WEIGHTS" == generated || "$MODEL_WEIGHTS" == checkpoints ]] \
    || die "MODEL_WEIGHTS=$MODEL_WEIGHTS: use generated or checkpoints"
if [[ "$MODEL_WEIGHTS" == checkpoints ]] && ! compgen -G "lambda_image/models/model_CNN_*.pth" >/dev/null; then
    die "MODEL_WEIGHTS=checkpoints but lambda_image/models/ has no model_CNN_*.pth: copy the MTL-AQA checkpoints there"
fi
command -v sam >/dev/null \
    || die "the AWS SAM CLI (sam) is not installed: see https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html"
command -v docker >/dev/null && docker info >/dev/null 2>&1 \
    || die "Docker is not running: sam build needs it to build the inference image (lambda_image/Dockerfile)"

# -- what deploying runs: boto3 and Flask (the page's config.json), nothing else -------------
# Its own environment, not the development one (no torch, Playwright or moto). PY=... uses
# a Python that already has them.
if [[ -z "${PY:-}" ]]; then
    PY=.venv-deploy/bin/python
    [[ -x "$PY" ]] || "${PYTHON:-python3.11}" -m venv .venv-deploy \
        || die "no ${PYTHON:-python3.11} to make .venv-deploy with: install Python 3.11 or set PYTHON=/path/to/python3"
    # boto3 alone first: the credentials are checked before the rest is installed.
    "$PY" -m pip install -q -r <("${PYTHON:-python3.11}" scripts/pins.py boto3)
fi
[[ -x "$PY" ]] || die "PY=$PY is not a Python interpreter"
"$PY" scripts/aws_deploy.py check
"$PY" -m pip install -q -r <("$PY" scripts/pins.py --base) >/dev/null

# -- the API functions' code: our packages and the pinned requirements (template CodeUri) ----
rm -rf build/api
mkdir -p build/api
cp -R divescore services build/api/
find build/api -name __pycache__ -type d -prune -exec rm -rf {} +
"$PY" scripts/pins.py --base > build/api/requirements.txt

# -- build and deploy (options in samconfig.toml) -------------------------------------------
# The template with the pip mirror settings (if any) as the inference image's build args;
# beside template.yaml, as SAM resolves CodeUri and DockerContext from the template's folder.
"$PY" scripts/aws_deploy.py build-template .template.deploy.yaml
sam build --template-file .template.deploy.yaml
sam deploy --stack-name "$STACK" --parameter-overrides "Stage=$STAGE WebOrigin=$WEB_ORIGIN ModelWeights=$MODEL_WEIGHTS"

# -- the web page, told where the API is ---------------------------------------------------
"$PY" scripts/aws_deploy.py publish-web "$STACK"
