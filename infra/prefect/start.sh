#!/usr/bin/env bash
# The Prefect side in one command, from any folder: a Prefect server on 127.0.0.1:${PREFECT_PORT:-4200} (the UI),
# the `cookbook` process work pool, the deployments of prefect.yaml (lifecycle, ablation, evaluate), and a worker
# that runs what the UI starts, in the project folder. Ctrl-C stops the worker and the server.
#
#   infra/prefect/start.sh          # then open http://127.0.0.1:4200 -> Deployments -> Run
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$PWD/.venv/bin"
PORT="${PREFECT_PORT:-4200}"
export PREFECT_API_URL="http://127.0.0.1:${PORT}/api"
LOG="${PREFECT_HOME:-$HOME/.prefect}/server.log"
mkdir -p "$(dirname "$LOG")"

"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
echo "prefect server starting (log: $LOG) ..."
until "$BIN/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$PREFECT_API_URL/health" 2>/dev/null; do
  kill -0 "$SERVER" 2>/dev/null || { echo "prefect server exited; see $LOG" >&2; exit 1; }
  sleep 1
done
"$BIN/prefect" work-pool create cookbook --type process --overwrite
"$BIN/prefect" deploy --all --no-prompt
echo "UI: http://127.0.0.1:${PORT}  (export PREFECT_API_URL=$PREFECT_API_URL in other terminals)"
PATH="$BIN:$PATH" "$BIN/prefect" worker start --pool cookbook
