#!/bin/sh
# STUDIO_ROLE=all (the default): the job scheduler in the background, the dashboard in the
# foreground (as `make run`); the scheduler stops with the container. STUDIO_ROLE=scheduler or
# dashboard runs one of them alone (compose.yaml's replicas: one scheduler, several dashboards
# behind Caddy). Extra arguments go to `streamlit run`.
set -e
role=${STUDIO_ROLE:-all}
if [ "$role" = scheduler ]; then
  exec python3 -m engine scheduler
fi
if [ "$role" = all ]; then
  python3 -m engine scheduler &
  scheduler=$!
  trap 'kill "$scheduler" 2>/dev/null || true' EXIT INT TERM
fi
python3 -m streamlit run /app/dashboard/app.py \
    --server.address 0.0.0.0 --server.port 8501 --server.headless true \
    --browser.gatherUsageStats false "$@"
