"""`flask bk media`, the production media node, as its own process: it pulls the cameras the
database asks for into HLS, writes their status, and leaves no ffmpeg behind when stopped."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AreaKind, Camera, CameraStatus, WatchSession
from media import hls
from tests import factories as f
from tests.conftest import PG_URL
from tests.media_helpers import alive, child_pids, fakecam_factory, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def start_fakecam():
    with fakecam_factory() as start:
        yield start


def _media_node(app_config, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BK_ENV": "testing",
        "INSTANCE_PATH": app_config.INSTANCE_PATH,
        "HLS_ROOT": app_config.HLS_ROOT,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    if PG_URL:
        env["DATABASE_URL"] = PG_URL
    else:
        env.pop("DATABASE_URL", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "bk", "media", "--node", name],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _ffmpeg_children(pid: int) -> list[int]:
    found = []
    for child in child_pids(pid):
        try:
            exe = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if Path(exe.decode(errors="replace")).name == "ffmpeg":
            found.append(child)
    return found


def test_the_media_command_streams_a_watched_camera_and_stops_clean_on_sigterm(
    app, app_config, tmp_path, start_fakecam
):
    feed = start_fakecam()
    district = f.district()
    centre = f.centre(district)
    camera = f.camera(centre, AreaKind.COOKING, url=feed.url)
    inspector = f.inspector_of(f.agency(district))
    now = dt.datetime.now(dt.UTC)
    db.session.add(  # an inspector's viewer lease, as POST /cameras/<id>/watch records it
        WatchSession(
            user_id=inspector.id,
            camera_id=camera.id,
            started_at=now,
            ended_at=now + dt.timedelta(minutes=10),
            purpose="live",
        )
    )
    db.session.commit()
    folder = Path(app_config.HLS_ROOT) / str(camera.id)
    log = tmp_path / "media.log"

    node = _media_node(app_config, "kitchen-node-1", log)
    ffmpegs: list[int] = []
    left_behind: list[int] | None = None
    try:
        assert wait_until(lambda: len(hls.listed_segments(folder)) >= 2, timeout=30), log.read_text(
            errors="replace"
        )
        ffmpegs = _ffmpeg_children(node.pid)
        assert len(ffmpegs) == 1  # one ffmpeg for the one camera
        db.session.rollback()
        row = db.session.scalar(select(Camera).where(Camera.id == camera.id))
        assert (row.media_node, row.status) == ("kitchen-node-1", CameraStatus.ONLINE)

        node.send_signal(signal.SIGTERM)
        # The supervisor's stop: SIGTERM to ffmpeg, 5 s grace, then SIGKILL.
        assert node.wait(timeout=20) == 0, log.read_text(errors="replace")
        left_behind = [pid for pid in ffmpegs if alive(pid)]
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        for pid in ffmpegs:  # never leave one behind for the next test, whatever happened
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    assert left_behind == []
    assert not folder.exists()  # a planned stop cleans its segments up
