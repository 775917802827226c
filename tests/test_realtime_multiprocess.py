"""Scale-out: two web processes share events through Redis. An event caused through process 1
reaches a Socket.IO client connected to process 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

from app.extensions import db
from app.models import Finding, FindingCategory, Severity
from tests import factories as f
from tests.conftest import PG_URL

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_up() -> bool:
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def two_servers(app_config, app):
    assert _redis_up(), "Redis is started by scripts/services.sh"
    env = {
        **os.environ,
        "BK_ENV": "testing",
        "INSTANCE_PATH": app_config.INSTANCE_PATH,
        "REDIS_URL": REDIS_URL,
        "PYTHONPATH": str(ROOT),
        # No cameras here; keep the servers' media supervisors out of the checkout's hls/.
        "EMBEDDED_MEDIA": "false",
        "HLS_ROOT": app_config.HLS_ROOT,
    }
    if PG_URL:
        env["DATABASE_URL"] = PG_URL
    else:
        env.pop("DATABASE_URL", None)
    processes, urls = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
    yield urls
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=10)


def _login(url: str, username: str) -> str:
    response = requests.post(
        url + "/api/v1/auth/login", json={"username": username, "password": f.PASSWORD}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_an_event_caused_on_one_process_reaches_a_client_on_another(app, two_servers):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    inspector = f.inspector_of(agency)
    operator = f.operator_of(centre)
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.PESTS,
        severity=Severity.I,
        description="发现蟑螂",
    )
    db.session.add(finding)
    db.session.commit()
    first, second = two_servers

    received: list[dict] = []
    arrived = threading.Event()
    client = socketio.Client(reconnection=False)

    @client.on("notice.issued", namespace="/live")
    def on_issued(data):
        received.append(data)
        arrived.set()

    client.connect(
        second,
        namespaces=["/live"],
        auth={"token": _login(second, operator.username)},
        wait_timeout=10,
    )
    try:
        headers = {"Authorization": f"Bearer {_login(first, inspector.username)}"}
        draft = requests.post(
            first + "/api/v1/inspector/notices",
            json={
                "centre_id": centre.id,
                "finding_ids": [finding.id],
                "requirements": "立即灭虫",
                "working_days": 1,
            },
            headers=headers,
            timeout=10,
        )
        assert draft.status_code == 201, draft.text
        issued = requests.post(
            f"{first}/api/v1/inspector/notices/{draft.json()['id']}/issue",
            headers=headers,
            timeout=10,
        )
        assert issued.status_code == 200, issued.text
        assert arrived.wait(10), "the event never reached the other process's client"
        assert received[0]["number"] == issued.json()["number"]
    finally:
        client.disconnect()
