"""Scale-out: two web processes share events through Redis. An event caused through either
process reaches Socket.IO clients connected to the other; an event published by a process that
serves no web requests (the media runner, the worker) reaches clients on both; a parent's
unlink made through one process takes effect on their socket open on the other."""

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
from app.models import AreaKind, Finding, FindingCategory, Severity
from app.realtime import NAMESPACE
from tests import factories as f
from tests.conftest import PG_URL

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent

# A process that serves no web requests and reports a camera's status the way the media
# runner does (`flask bk media` on a media node): through the camera service, whose event is
# relayed to Socket.IO through the Redis message queue after commit.
MEDIA_NODE = """
import sys

from app import create_app
from app.models import CameraStatus
from app.services import cameras

app = create_app()
with app.app_context():
    changed = cameras.record_status(
        int(sys.argv[1]), CameraStatus.OFFLINE, last_frame_at=None, reconnects_last_hour=1
    )
    assert changed, "the camera was already offline"
"""


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
def server_env(app_config, app) -> dict[str, str]:
    """The environment of the app's processes: the test's database, Redis as the queue."""
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
    return env


@pytest.fixture
def two_servers(server_env):
    processes, urls = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.serve", "--port", str(port)],
                cwd=ROOT,
                env=server_env,
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


class Listener:
    """An open app: a Socket.IO client of one server process, recording every event."""

    def __init__(self, url: str, username: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self._arrived = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record, namespace=NAMESPACE)
        self.client.connect(
            url, namespaces=[NAMESPACE], auth={"token": _login(url, username)}, wait_timeout=10
        )

    def _record(self, name: str, data: dict) -> None:
        with self._arrived:
            self.events.append((name, data))
            self._arrived.notify_all()

    def names(self) -> list[str]:
        with self._arrived:
            return [name for name, _ in self.events]

    def wait_for(self, name: str, timeout: float = 10) -> dict:
        with self._arrived:
            arrived = self._arrived.wait_for(
                lambda: any(n == name for n, _ in self.events), timeout
            )
            assert arrived, f"{name} never arrived; heard {[n for n, _ in self.events]}"
            return next(data for n, data in self.events if n == name)

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def listeners():
    opened: list[Listener] = []

    def open_(url: str, username: str) -> Listener:
        opened.append(Listener(url, username))
        return opened[-1]

    yield open_
    for listener in opened:
        listener.close()


def test_each_process_delivers_what_was_caused_through_the_other(app, two_servers, listeners):
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
    on_first = listeners(first, inspector.username)
    on_second = listeners(second, operator.username)

    inspector_h = {"Authorization": f"Bearer {_login(first, inspector.username)}"}
    draft = requests.post(
        first + "/api/v1/inspector/notices",
        json={
            "centre_id": centre.id,
            "finding_ids": [finding.id],
            "requirements": "立即灭虫",
            "working_days": 1,
        },
        headers=inspector_h,
        timeout=10,
    )
    assert draft.status_code == 201, draft.text
    issued = requests.post(
        f"{first}/api/v1/inspector/notices/{draft.json()['id']}/issue",
        headers=inspector_h,
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    # Caused through the first process, heard on the second.
    assert on_second.wait_for("notice.issued")["number"] == issued.json()["number"]

    acknowledged = requests.post(
        f"{second}/api/v1/notices/{draft.json()['id']}/acknowledge",
        headers={"Authorization": f"Bearer {_login(second, operator.username)}"},
        timeout=10,
    )
    assert acknowledged.status_code == 200, acknowledged.text
    # Caused through the second process, heard on the first.
    heard = on_first.wait_for("notice.acknowledged")
    assert (heard["number"], heard["status_label"]) == (issued.json()["number"], "已签收")


def test_a_non_web_process_reaches_clients_and_an_unlink_closes_the_room_everywhere(
    app, server_env, two_servers, listeners
):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    camera = f.camera(centre, AreaKind.COOKING)
    inspector = f.inspector_of(agency)
    leaving = f.parent_of(centre)
    staying = f.parent_of(centre)
    db.session.commit()
    first, second = two_servers
    inspector_on_first = listeners(first, inspector.username)
    leaving_on_second = listeners(second, leaving.username)
    staying_on_second = listeners(second, staying.username)

    # The parent unlinks through the first process while their app is open on the second.
    unlinked = requests.delete(
        f"{first}/api/v1/parent/centres/{centre.id}",
        headers={"Authorization": f"Bearer {_login(first, leaving.username)}"},
        timeout=10,
    )
    assert unlinked.status_code == 204, unlinked.text
    assert leaving_on_second.wait_for("parent.unlinked")["linked_centre_id"] == centre.id

    subprocess.run(
        [sys.executable, "-c", MEDIA_NODE, str(camera.id)],
        cwd=ROOT,
        env=server_env,
        check=True,
        timeout=60,
    )
    assert inspector_on_first.wait_for("camera.status")["camera_id"] == camera.id
    assert staying_on_second.wait_for("camera.status")["status"] == "offline"
    # Sent to the room in the same pass as the staying parent's: it would be here by now.
    time.sleep(0.5)
    assert leaving_on_second.names() == ["parent.unlinked"]
    assert leaving_on_second.client.connected
