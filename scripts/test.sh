#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: once on SQLite, once on PostgreSQL
# (migrations applied with Alembic in both). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/setup.sh test

export TEST_PG_URL=${TEST_PG_URL:-postgresql+psycopg://bk:bk@127.0.0.1:5432/bk_test}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

echo "==> lint"
.venv/bin/ruff check --output-format concise .

echo "==> tests on SQLite"
env -u TEST_DATABASE_URL .venv/bin/python -m pytest "$@"

echo "==> tests on PostgreSQL"
TEST_DATABASE_URL="$TEST_PG_URL" .venv/bin/python -m pytest "$@"
