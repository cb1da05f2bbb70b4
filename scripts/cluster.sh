#!/usr/bin/env bash
# Starts facade's production topology as local processes on loopback (Docker's compose.yaml
# runs the same one in containers): the DrChrono sandbox as the vendor, 2 API replicas and
# 2 export workers, all on one PostgreSQL database. Stops them all on Ctrl-C or SIGTERM.
#
#   ./scripts/cluster.sh            # replicas at http://127.0.0.1:8081/fhir and :8082/fhir
#
# Settings (environment):
#   FACADE_DATABASE_URL   the deployment's database (default: a `facade_cluster` database on
#                         the local server, created when missing)
#   CLUSTER_DIR           state directory every process shares: key file, export files
#                         (default: .facade-cluster)
#   CLUSTER_PORTS         the replicas' ports (default: "8081 8082")
#   CLUSTER_WORKERS       export workers (default: 2)
#   CLUSTER_SANDBOX_PORT  the sandbox's port (default: 8900)
#   CLUSTER_PATIENTS      sandbox patients (default: 50)
#   CLUSTER_VENDOR_LIMIT  the sandbox's hourly quota; facade's budget is set to it (default 500)
#   FACADE_PUBLIC_BASE_URL  the one base every replica advertises and tokens name as their
#                         audience: a reverse proxy's address in production (default: the
#                         first replica's)
# Other FACADE_* settings pass through to every facade process. The processes' pids are in
# $CLUSTER_DIR/cluster.pids ("role pid" lines); "cluster ready" is printed once every replica
# answers /health/ready.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ -z "${CLUSTER_SKIP_INSTALL:-}" ]; then  # tests set it: they run from the installed venv
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
FACADE=.venv/bin/facade

DIR="${CLUSTER_DIR:-.facade-cluster}"
PORTS=(${CLUSTER_PORTS:-8081 8082})
WORKERS="${CLUSTER_WORKERS:-2}"
SANDBOX_PORT="${CLUSTER_SANDBOX_PORT:-8900}"
PATIENTS="${CLUSTER_PATIENTS:-50}"
VENDOR_LIMIT="${CLUSTER_VENDOR_LIMIT:-500}"
export FACADE_DATABASE_URL="${FACADE_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/facade_cluster}"
export FACADE_PUBLIC_BASE_URL="${FACADE_PUBLIC_BASE_URL:-http://127.0.0.1:${PORTS[0]}/fhir}"
export FACADE_JOBS=queue
export FACADE_UPSTREAM_HOURLY_LIMIT="$VENDOR_LIMIT"
# Loopback only: the vendor (the sandbox) and the replicas answer on plain HTTP.
export FACADE_ALLOW_HTTP=local-development
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

mkdir -p "$DIR" && chmod 700 "$DIR"
PIDS="$DIR/cluster.pids"
: >"$PIDS"
children=()
stop() {
  trap - EXIT INT TERM
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # start ROLE COMMAND...: in the background, its output prefixed with its role
  local role="$1"
  shift
  "$@" > >(sed -u "s/^/[$role] /") 2>&1 &
  children+=("$!")
  echo "$role $!" >>"$PIDS"
}

wait_ready() {  # wait_ready URL: until it answers 200 (a minute at most)
  for _ in $(seq 600); do
    if curl -fsS -o /dev/null --noproxy '*' "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "cluster: $1 did not become ready" >&2
  return 1
}

# The database, created on first use.
.venv/bin/python - <<'EOF'
import os
from sqlalchemy import create_engine, make_url, text
url = make_url(os.environ["FACADE_DATABASE_URL"])
server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with server.connect() as connection:
    if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": url.database}).first():
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
server.dispose()
EOF

# The vendor: the sandbox, in its own process. Its app secret goes through a file (never argv).
SECRET_FILE="$DIR/vendor-client-secret"
[ -s "$SECRET_FILE" ] || (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' >"$SECRET_FILE")
start sandbox "$FACADE" sandbox drchrono --port "$SANDBOX_PORT" --patients "$PATIENTS" \
  --hourly-limit "$VENDOR_LIMIT" --client-secret-file "$SECRET_FILE"
wait_ready "http://127.0.0.1:$SANDBOX_PORT/sandbox/usage"

# facade's authorization at the vendor, stored (encrypted) in the shared database; the first
# command also makes the deployment's key file every process reads.
"$FACADE" connect drchrono --base-url "http://127.0.0.1:$SANDBOX_PORT" --client-id facade-sandbox \
  --client-secret-file "$SECRET_FILE" --data-dir "$DIR" --no-browser --timeout 30 \
  | sed -u 's/^/[connect] /'

for port in "${PORTS[@]}"; do
  start "api-$port" "$FACADE" serve --data-dir "$DIR" --port "$port"
done
for n in $(seq "$WORKERS"); do
  start "worker-$n" "$FACADE" worker --data-dir "$DIR"
done
for port in "${PORTS[@]}"; do
  wait_ready "http://127.0.0.1:$port/health/ready"
done
echo "cluster ready: FHIR at ${PORTS[*]/#/http://127.0.0.1:} (advertised as $FACADE_PUBLIC_BASE_URL)"
# Until stopped. A process that dies (a worker killed mid-export) leaves the others serving.
wait
