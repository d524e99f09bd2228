#!/bin/bash
# The parts of LocalStack's docker-entrypoint.sh that matter without its supervisor: strip the
# LOCALSTACK_ prefix from variables (but LOCALSTACK_HOSTNAME), then run the runtime as
# bin/localstack-supervisor does: `python -m localstack.runtime.main`.
set -eo pipefail
source <(
  env | grep -v -e '^LOCALSTACK_HOSTNAME' -e '^LOCALSTACK_[[:digit:]]' |
  sed -ne 's/^LOCALSTACK_\([^=]\+\)=.*/export \1=${LOCALSTACK_\1}/p'
)
mkdir -p /var/lib/localstack/logs
test -d /etc/localstack/init/boot.d && python -m localstack.runtime.init BOOT
exec python -m localstack.runtime.main
