"""The README's run command, as a newcomer uses it: `bash scripts/run.sh` on an empty instance
folder starts the product with the demo data, answers /healthz, lets the demo accounts in,
streams the simulated cameras, and leaves no camera process behind when it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import PG_URL
from tests.web_support import _free_port

ROOT = Path(__file__).resolve().parent.parent


def _ffmpeg_writing_to(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "ffmpeg" in cmdline and str(folder) in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(PG_URL is not None, reason="the run command is the SQLite default; run once")
def test_the_run_command_starts_the_demo_and_stops_cleanly(tmp_path):
    port = _free_port()
    hls = tmp_path / "hls"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DATABASE_URL"))},
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "HLS_ROOT": str(hls),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DEMO_PASSWORD": "run-command-demo",
    }
    env.pop("REDIS_URL", None)
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # the first run may install the Python packages
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        output = (tmp_path / "run.log").read_text()
        assert health is not None and health.status_code == 200, output[-3000:]
        assert f"open {base}/" in output
        assert "Demo logins: admin, inspector, operator, technician, parent" in output
        assert "run-command-demo" in output

        login = requests.post(
            f"{base}/api/v1/auth/login",
            json={"username": "inspector", "password": "run-command-demo"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        centres = requests.get(f"{base}/api/v1/centres", headers=auth, timeout=10).json()
        live = next(c for c in centres if c["status"] == "live")
        cameras = requests.get(
            f"{base}/api/v1/centres/{live['id']}/cameras", headers=auth, timeout=10
        ).json()
        camera_id = cameras[0]["id"]

        # The simulated camera streams: the signed playlist lists segments within seconds.
        watch = requests.post(f"{base}/api/v1/cameras/{camera_id}/watch", headers=auth, timeout=10)
        assert watch.status_code == 200, watch.text
        playlist_url = base + watch.json()["url"]
        deadline = time.monotonic() + 30
        playlist = ""
        while time.monotonic() < deadline and ".ts" not in playlist:
            answer = requests.get(playlist_url, timeout=5)
            playlist = answer.text if answer.status_code == 200 else ""
            time.sleep(0.5)
        assert ".ts" in playlist
        assert _ffmpeg_writing_to(hls)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    deadline = time.monotonic() + 10
    while _ffmpeg_writing_to(hls) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _ffmpeg_writing_to(hls)
    for pid in left:  # not to leave them running after a failure
        os.kill(pid, signal.SIGKILL)
    assert left == [], "the stopped server left camera processes running"
