#!/usr/bin/env bash
# Start Bright Kitchen on its embedded default: SQLite in ./instance, demo data, in-process
# services. Prints where to open it and the demo logins.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "==> installing ffmpeg (the simulated camera and live view need it)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
fi
bash scripts/setup.sh
export FLASK_APP=wsgi
HOST=${HOST:-0.0.0.0}
PORT=${PORT:-5000}
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:$PORT}
.venv/bin/flask db upgrade >/dev/null
.venv/bin/flask bk seed-demo --if-empty
echo
echo "明厨亮灶 is starting: open $PUBLIC_URL/  (health: $PUBLIC_URL/healthz)"
echo "Demo logins: admin, inspector, operator, technician, parent — password: ${DEMO_PASSWORD:-bk-demo-2026}"
exec .venv/bin/python -m app.serve --host "$HOST" --port "$PORT"
