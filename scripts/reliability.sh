#!/usr/bin/env bash
# The full fault-injection runs (pytest -m reliability: 20 cycles each, robots down three
# minutes, an hour of HLS streaming), once on SQLite and once on PostgreSQL. CI (scripts/test.sh) runs the same tests with 3 cycles. Extra arguments go to
# pytest. Figures of a run: docs/reliability.md.
# Expects scripts/services.sh and scripts/setup.sh test to have run (scripts/test.sh does both);
# set TEST_PG_URL to use another PostgreSQL database.
set -euo pipefail
cd "$(dirname "$0")/.."
export BK_RELIABILITY_FULL=1
export TEST_PG_URL=${TEST_PG_URL:-postgresql+psycopg://bk:bk@127.0.0.1:5432/bk_test}

echo "==> reliability (full) on SQLite"
env -u TEST_DATABASE_URL .venv/bin/python -m pytest -m reliability -s -p no:cacheprovider "$@"

echo "==> reliability (full) on PostgreSQL (the HLS disk run touches no database: it skips itself here)"
TEST_DATABASE_URL="$TEST_PG_URL" .venv/bin/python -m pytest -m reliability -s -p no:cacheprovider \
    "$@"
