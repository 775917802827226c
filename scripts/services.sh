#!/usr/bin/env bash
# Install (Debian packages) and start what the tests need: ffmpeg, a GStreamer RTSP server for
# the test camera, PostgreSQL, Redis, nginx, Chromium and CJK fonts. Idempotent.
set -euo pipefail

PACKAGES=(ffmpeg postgresql redis-server nginx chromium fonts-noto-cjk fonts-wqy-zenhei)
GST_PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-x)

missing=()
for p in "${PACKAGES[@]}" "${GST_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  apt-get install -y -qq --no-install-recommends "${GST_PACKAGES[@]}" >/dev/null
fi

# PostgreSQL: start the cluster, create the test role and database once.
PG_VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  pg_ctlcluster "$PG_VERSION" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q" && break
  sleep 0.5
done
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='bk'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE bk LOGIN PASSWORD 'bk' SUPERUSER\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='bk_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O bk bk_test"

# Redis: a throwaway instance for tests that share events across processes.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port 6379 --save '' --appendonly no >/dev/null
  for _ in $(seq 1 20); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
echo "==> services ready: PostgreSQL $PG_VERSION, Redis $(redis-cli -p 6379 ping)"
