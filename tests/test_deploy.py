"""The production layout: gunicorn with gevent workers serving the API and Socket.IO over
WebSocket, and the nginx site config parsing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import socketio

from app.extensions import db
from app.models import Role
from tests import factories as f
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_nginx_site_config_parses(tmp_path):
    site = (ROOT / "deploy" / "nginx" / "bright-kitchen.conf").read_text()
    (tmp_path / "hls-key.conf").write_text('set $hls_signing_key "k";\n')
    site = site.replace("/etc/bright-kitchen/hls-key.conf", str(tmp_path / "hls-key.conf"))
    site = site.replace("/opt/bright-kitchen/deploy", str(ROOT / "deploy"))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{_free_port()};")
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ include {ROOT}/deploy/nginx/hls-maps.conf; include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_gunicorn_gevent_serves_the_api_and_websocket_socketio(app, app_config):
    user = f.user(Role.ADMIN)
    db.session.commit()
    port = _free_port()
    database_url = PG_URL or f"sqlite:///{app_config.INSTANCE_PATH}/bright_kitchen.sqlite3"
    env = {
        **os.environ,
        "BK_ENV": "production",
        "SECRET_KEY": app_config.SECRET_KEY,
        "CREDENTIALS_KEYS": app_config.CREDENTIALS_KEYS,
        "HLS_SIGNING_KEY": "production-test-key",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": app_config.INSTANCE_PATH,
        "BK_BIND": f"127.0.0.1:{port}",
    }
    env.pop("REDIS_URL", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(base + "/healthz", timeout=5)
                break
            except requests.RequestException:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        token = requests.post(
            base + "/api/v1/auth/login",
            json={"username": user.username, "password": f.PASSWORD},
            timeout=5,
        ).json()["access_token"]
        connected = threading.Event()
        client = socketio.Client(reconnection=False)
        client.on("connect", lambda: connected.set(), namespace="/live")
        client.connect(
            base,
            namespaces=["/live"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            assert connected.wait(5)
            assert client.transport() == "websocket"
        finally:
            client.disconnect()
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()
