#!/usr/bin/env bash
# Create the virtual environment and install the pinned Python dependencies, then the pinned
# front-end packages of the H5 app (npm ci → app/web/static/vendor/, git-ignored). Idempotent.
# Usage: scripts/setup.sh [extra]   (extra: "test" to add the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
    echo "==> installing python3-venv (Debian leaves it out of python3)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-${1:-base}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # constraints.txt pins every transitive package too, so a fresh machine gets what CI ran.
  if [ "${1:-}" = "test" ]; then
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
  else
    .venv/bin/python -m pip install -q -c constraints.txt -e .
  fi
  touch "$stamp"
fi

# Front-end packages (WeUI, hls.js, ECharts, socket.io-client) from the npm registry, exactly as
# app/web/package-lock.json pins them; their postinstall copies the browser builds to
# app/web/static/vendor/, which Flask serves at /assets/vendor/.
if ! command -v npm >/dev/null 2>&1; then
  echo "==> installing Node.js and npm (the H5 app's front-end packages come from npm)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
web_stamp="app/web/node_modules/.installed-$(sha256sum app/web/package-lock.json app/web/vendor.mjs | sha256sum | cut -c1-16)"
if [ ! -f "$web_stamp" ] || [ ! -f app/web/static/vendor/hls.mjs ]; then
  npm ci --prefix app/web --no-audit --no-fund --loglevel=error
  touch "$web_stamp"
fi
