# Sourced by `make up`: which base images the stack's builds and LocalStack use.
# The real ones (defaults in docker-compose.yml and the Dockerfiles: localstack/localstack:4.14.0,
# public.ecr.aws/lambda/python, python:3.12-slim-bookworm) when the engine has them or can pull
# them; else local stand-ins built by docker/standins/build.sh from the package registries.
# DIVESCORE_STANDINS=1 forces the stand-ins, =0 the real images; LOCALSTACK_IMAGE, LAMBDA_BASE_IMAGE
# and PYTHON_IMAGE set by hand are kept.
_real=(localstack/localstack:4.14.0 public.ecr.aws/lambda/python:3.12.2026.06.02.15 python:3.12.13-slim-bookworm)
_have_real() {
  local image
  for image in "${_real[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    timeout "${DIVESCORE_PULL_TIMEOUT:-60}" docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}
# pip's CA bundle (a TLS-intercepting proxy) reaches the builds as the secret pip_cert.
if [ -z "${PIP_CERT_FILE:-}" ]; then
  _cert=$({ pip config list || python3 -m pip config list; } 2>/dev/null | sed -n "s/^[^=]*\\.cert='\\(.*\\)'$/\\1/p" | head -1)
  [ -s "$_cert" ] || _cert=/etc/ssl/certs/ca-certificates.crt
  [ -s "$_cert" ] && export PIP_CERT_FILE=$_cert
fi
if [ -z "${LOCALSTACK_IMAGE:-}${LAMBDA_BASE_IMAGE:-}${PYTHON_IMAGE:-}" ] \
   && { [ "${DIVESCORE_STANDINS:-}" = 1 ] || { [ "${DIVESCORE_STANDINS:-}" != 0 ] && ! _have_real; }; }; then
  echo "make up: the public base images cannot be pulled here: building local stand-ins (docker/standins/build.sh)"
  _out=$(bash docker/standins/build.sh) || return 1 2>/dev/null || exit 1
  while IFS='=' read -r _k _v; do [ -n "$_k" ] && export "$_k=$_v"; done <<<"$_out"
  # torch for the stand-in's Python 3.11: the CPU wheel from pip's find-links folder, when there.
  _links=$({ pip config get global.find-links || python3 -m pip config get global.find-links; } 2>/dev/null | tr -d "'" || true)
  for _w in ${_links:-/nonexistent}/torch-*+cpu-cp311-*.whl; do
    [ -e "$_w" ] && { [ -e "lambda_image/wheels/${_w##*/}" ] || cp "$_w" lambda_image/wheels/; }
  done
fi
echo "make up: images: LocalStack ${LOCALSTACK_IMAGE:-localstack/localstack:4.14.0}," \
     "function base ${LAMBDA_BASE_IMAGE:-public.ecr.aws/lambda/python (Dockerfile default)}," \
     "services base ${PYTHON_IMAGE:-python:3.12-slim-bookworm (Dockerfile default)}"
