#!/bin/sh
# `make replicas`: the job scheduler, REPLICAS dashboards (ports PORT+1 ... PORT+REPLICAS) and
# Caddy in front of them on PORT, with session affinity (docker/Caddyfile). All stop together.
#   REPLICAS=2 PORT=8501 PYTHON=.venv/bin/python sh docker/replicas.sh
set -eu
REPLICAS=${REPLICAS:-2}
PORT=${PORT:-8501}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
command -v caddy >/dev/null || { echo "replicas need Caddy: apt-get install caddy" >&2; exit 2; }
pids=""
trap 'kill $pids 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
if [ "${STUDIO_NO_SCHEDULER:-0}" != 1 ]; then
  "$PYTHON" -m engine scheduler & pids="$pids $!"
fi
upstreams=""
i=1
while [ "$i" -le "$REPLICAS" ]; do
  port=$((PORT + i))
  STUDIO_REPLICA="$i" "$PYTHON" -m streamlit run "$ROOT/dashboard/app.py" \
      --server.address 127.0.0.1 --server.port "$port" --server.headless true \
      >"${STUDIO_LOG_DIR:-/tmp}/studio-replica-$i.log" 2>&1 &
  pids="$pids $!"
  upstreams="$upstreams 127.0.0.1:$port"
  i=$((i + 1))
done
STUDIO_PROXY_PORT="$PORT" STUDIO_UPSTREAMS="$upstreams" \
  caddy run --config "$HERE/Caddyfile" --adapter caddyfile & pids="$pids $!"
echo "DIGITS Studio: http://127.0.0.1:$PORT ($REPLICAS replicas behind Caddy)"
wait
