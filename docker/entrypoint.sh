#!/bin/sh
# The job scheduler in the background, the dashboard in the foreground (as `make run`); the
# scheduler stops with the container. Extra arguments go to `streamlit run`.
set -e
python3 -m engine scheduler &
scheduler=$!
trap 'kill "$scheduler" 2>/dev/null || true' EXIT INT TERM
python3 -m streamlit run /app/dashboard/app.py \
    --server.address 0.0.0.0 --server.port 8501 --server.headless true \
    --browser.gatherUsageStats false "$@"
