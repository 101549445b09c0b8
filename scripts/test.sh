#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run runs exactly this).
# Starts MariaDB, PostgreSQL and Redis (plus a 3-master Redis Cluster) on
# loopback (installing them from apt when missing), then runs vet, gofmt and every test, integration tests
# included: CONNECTD_REQUIRE_SERVERS=1 turns a missing server into a
# failure instead of a skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/services.sh start
scripts/redis-cluster.sh start
trap 'scripts/redis-cluster.sh stop >/dev/null 2>&1 || true; scripts/services.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(scripts/services.sh env)"
eval "$(scripts/redis-cluster.sh env)"
export CONNECTD_REQUIRE_SERVERS=1

echo "== go vet" >&2
go vet ./...
echo "== gofmt" >&2
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need formatting:" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "== go test (race detector) on the core packages" >&2
go test -race -count=1 -timeout 15m ./cdc/... ./configs/... ./offsets/... ./runtime/... ./sources/... ./sinks/... ./transforms/...
echo "== go test ./..." >&2
go test -count=1 -timeout 30m ./...
