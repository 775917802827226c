"""Fault runs of the media supervisor against the real RTSP test camera (tests/fakecam.py):
the camera loses power (SIGKILL) and comes back on the same port, or hangs (SIGSTOP) and
resumes (SIGCONT), many times in a row. Every cycle must recover, the reconnect counter must
count every failure, and no ffmpeg may be left behind after shutdown.

What the supervisor counts: ``reconnects_last_hour`` grows by one for every failed ffmpeg run
(``Supervisor._failed``: an exit, a stall, or a start that produced no segment), not once per
camera outage — while a killed camera is still down, each retry that fails counts too. So the
test asserts that the counter grows by at least one per fault and equals the number of
failures the supervisor logged ("restarting in …"), i.e. nothing is missed or counted twice.

Quick in CI (3 cycles each); ``BK_RELIABILITY_FULL=1`` runs 20 (scripts/reliability.sh).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.supervisor import CameraSource, Status, Supervisor
from tests.media_helpers import CameraFactory, fakecam_factory, processes_mentioning, wait_until
from tests.reliability_support import cycles, summarise
from tests.test_media_supervisor import StatusLog, make_supervisor, segments_in

pytestmark = pytest.mark.reliability

CAMERA = "kitchen1"


@pytest.fixture
def cameras() -> Iterator[CameraFactory]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam


def _failures_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "media.supervisor" and r.msg.startswith("camera %s: restarting")
    )


def _streaming(sup: Supervisor) -> bool:
    """Online with at least two segments listed (so a stall can be told from a start)."""
    state = sup.state(CAMERA)
    if state is None or state.status is not Status.ONLINE:
        return False
    playlist = sup.playlist(CAMERA)
    try:
        return len(segments_in(playlist)) >= 2
    except OSError:
        return False


def _newest(sup: Supervisor) -> str | None:
    segment = sup.newest_segment(CAMERA)
    return segment.name if segment is not None else None


@pytest.mark.parametrize("n", [cycles()])
def test_camera_killed_and_restarted_recovers_every_time(
    n: int, cameras: CameraFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="media.supervisor")
    hls_root = tmp_path / "hls"
    status_log = StatusLog()
    detect, recover, failures = [], [], []
    sup = make_supervisor(hls_root, status_log)
    try:
        camera = cameras()
        sup.watch(CameraSource(CAMERA, camera.url), viewer="inspector-1", ttl=3600)
        assert sup.wait_for_status(CAMERA, Status.ONLINE, timeout=10)
        for cycle in range(n):
            assert wait_until(lambda: _streaming(sup), timeout=10), f"cycle {cycle}: not streaming"
            before = sup.state(CAMERA)
            old_pid, old_segment = before.pid, _newest(sup)

            camera.kill()
            dropped = time.monotonic()
            assert sup.wait_for_status(CAMERA, Status.OFFLINE, timeout=10), f"cycle {cycle}"
            detect.append(time.monotonic() - dropped)
            assert processes_mentioning(str(hls_root) + "/") in ([], [sup.state(CAMERA).pid])

            camera.start()  # the same port as before
            back = time.monotonic()
            assert sup.wait_for_status(CAMERA, Status.ONLINE, timeout=15), f"cycle {cycle}"
            recover.append(time.monotonic() - back)

            after = sup.state(CAMERA)
            assert after.pid not in (None, old_pid)
            assert _newest(sup) not in (None, old_segment)  # a new segment from the new run
            grew = after.reconnects_last_hour - before.reconnects_last_hour
            assert grew >= 1, f"cycle {cycle}: the drop was not counted"
            failures.append(grew)
            assert after.reconnects_last_hour == _failures_logged(caplog)
        assert sup.state(CAMERA).reconnects_last_hour == sum(failures)
    finally:
        sup.shutdown()
    assert processes_mentioning(str(hls_root) + "/") == []
    summarise(
        f"camera SIGKILL → restart on the same port, {n} cycles",
        {
            "kill → reported offline": detect,
            "camera back → online (new segment)": recover,
        },
        {"failures counted per outage": failures},
    )
    print(f"reconnects counted: {sum(failures)}; outages: {n}")


@pytest.mark.parametrize("n", [cycles()])
def test_camera_hung_and_resumed_recovers_every_time(
    n: int, cameras: CameraFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="media.supervisor")
    hls_root = tmp_path / "hls"
    status_log = StatusLog()
    detect, recover, failures = [], [], []
    sup = make_supervisor(hls_root, status_log)
    try:
        camera = cameras()
        sup.watch(CameraSource(CAMERA, camera.url), viewer="inspector-1", ttl=3600)
        assert sup.wait_for_status(CAMERA, Status.ONLINE, timeout=10)
        for cycle in range(n):
            assert wait_until(lambda: _streaming(sup), timeout=10), f"cycle {cycle}: not streaming"
            before = sup.state(CAMERA)
            hung_pid, old_segment = before.pid, _newest(sup)

            camera.pause()
            hung = time.monotonic()
            assert sup.wait_for_status(CAMERA, Status.STALLED, timeout=10), f"cycle {cycle}"
            detect.append(time.monotonic() - hung)
            # The ffmpeg stuck on the hung camera was killed, not left waiting.
            assert hung_pid not in processes_mentioning(str(hls_root) + "/")

            camera.resume()
            resumed = time.monotonic()
            assert sup.wait_for_status(CAMERA, Status.ONLINE, timeout=20), f"cycle {cycle}"
            recover.append(time.monotonic() - resumed)

            after = sup.state(CAMERA)
            assert after.pid not in (None, hung_pid)
            assert _newest(sup) not in (None, old_segment)
            grew = after.reconnects_last_hour - before.reconnects_last_hour
            assert grew >= 1, f"cycle {cycle}: the stall was not counted"
            failures.append(grew)
            assert after.reconnects_last_hour == _failures_logged(caplog)
        assert sup.state(CAMERA).reconnects_last_hour == sum(failures)
        # on_status runs just after the change is published, so wait_for_status can return
        # before the callback has seen the last ONLINE.
        assert wait_until(lambda: status_log.statuses(CAMERA)[-1:] == [Status.ONLINE], 2)
        assert status_log.statuses(CAMERA).count(Status.STALLED) == n
    finally:
        sup.shutdown()
    assert processes_mentioning(str(hls_root) + "/") == []
    summarise(
        f"camera SIGSTOP (hung) → SIGCONT, {n} cycles",
        {
            "hang → reported stalled": detect,
            "resumed → online (new segment)": recover,
        },
        {"failures counted per hang": failures},
    )
    print(f"reconnects counted: {sum(failures)}; hangs: {n}")
