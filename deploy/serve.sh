#!/usr/bin/env bash
# Run Skiff the Prefect way on this machine, in one command:
#   a Prefect server on 127.0.0.1:${SKIFF_PREFECT_PORT:-4200} (unless PREFECT_API_URL already
#   names a running one), the "skiff" process work pool, every deployment in
#   deploy/prefect.yaml, and a worker. It stays in the foreground; Ctrl-C stops what it started.
# Then, from another shell:
#   prefect deployment run 'bank-marketing/local' --watch
# and open the UI at http://127.0.0.1:${SKIFF_PREFECT_PORT:-4200}.
set -euo pipefail
# Job control: without it, a background job of a non-interactive script ignores the first
# SIGINT/SIGTERM, and the worker would outlive this script.
set -m
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}
PREFECT=("$PYTHON" -m prefect)
RUNTIME=${SKIFF_RUNTIME:-$HOME/.local/state/skiff}
mkdir -p "$RUNTIME"
export PREFECT_SERVER_ANALYTICS_ENABLED=${PREFECT_SERVER_ANALYTICS_ENABLED:-false}
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}
# The server streams each run's logs to `prefect deployment run --watch` (off by default, which
# leaves --watch with state changes only: a failure's reason would not reach it).
export PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED=${PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED:-true}
export PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED=${PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED:-true}

started=()
stop() {
  trap - EXIT INT TERM
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # A worker whose SIGINT was ignored by whoever started this script cannot honour SIGTERM
  # (Prefect turns it into SIGINT): give everything 20 s, then kill what is left.
  for _ in $(seq 40); do
    alive=0
    for pid in "${started[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.5
  done
  for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${PREFECT_API_URL:-}" ]]; then
  port=${SKIFF_PREFECT_PORT:-4200}
  export PREFECT_API_URL="http://127.0.0.1:$port/api"
  echo "starting a Prefect server at http://127.0.0.1:$port (log: $RUNTIME/prefect-server.log)"
  "${PREFECT[@]}" server start --host 127.0.0.1 --port "$port" >"$RUNTIME/prefect-server.log" 2>&1 &
  started+=($!)
fi
echo "waiting for the Prefect API at $PREFECT_API_URL"
"${PREFECT[@]}" server status --wait --timeout 180 >/dev/null

"${PREFECT[@]}" work-pool create skiff --type process --overwrite >/dev/null
# Prefect's deploy prints, for every deployment, how to start a worker: this script starts
# one. Its log keeps all it said (wide: no line wrapped); here, one line for them all.
if ! COLUMNS=400 "${PREFECT[@]}" --no-prompt deploy --all --prefect-file deploy/prefect.yaml \
    >"$RUNTIME/prefect-deploy.log" 2>&1; then
  cat "$RUNTIME/prefect-deploy.log" >&2
  exit 1
fi
deployed=$(grep -o "Deployment '[^']*' successfully created" "$RUNTIME/prefect-deploy.log" \
  | sed "s/^Deployment '\(.*\)' successfully created$/\1/" | paste -sd ' ' || true)
echo "deployments: ${deployed:-see $RUNTIME/prefect-deploy.log} (log: $RUNTIME/prefect-deploy.log)"
echo "starting a worker on pool skiff; Ctrl-C stops it"
"${PREFECT[@]}" worker start --pool skiff --name "skiff-$(hostname)-$$" &
started+=($!)
wait "${started[-1]}"
