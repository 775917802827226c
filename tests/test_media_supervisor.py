"""The supervisor with real ffmpeg against the real RTSP test camera (tests/fakecam.py).

Timings are shortened through the constructor (idle timeout, backoff cap, watchdog tick) so
the faults play out in seconds; the production defaults are the ones DESIGN.md sets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media import argv
from media.probe import probe
from media.supervisor import CameraSource, Status, StatusInfo, Supervisor, kill_stray_ffmpeg
from tests.media_helpers import (
    CameraFactory,
    alive,
    fakecam_factory,
    probe_segment,
    processes_mentioning,
    wait_until,
)


@dataclass
class StatusLog:
    """Every on_status call, in order."""

    events: list[tuple[str, Status, StatusInfo]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, camera_id: str, status: Status, info: StatusInfo) -> None:
        with self.lock:
            self.events.append((camera_id, status, info))

    def statuses(self, camera_id: str) -> list[Status]:
        with self.lock:
            return [s for c, s, _ in self.events if c == camera_id]


@pytest.fixture
def cameras() -> Iterator[CameraFactory]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam


@pytest.fixture
def status_log() -> StatusLog:
    return StatusLog()


@pytest.fixture
def hls_root(tmp_path: Path) -> Path:
    return tmp_path / "hls"


def make_supervisor(hls_root: Path, status_log: StatusLog, **overrides: object) -> Supervisor:
    settings: dict[str, object] = {
        "on_status": status_log,
        "idle_timeout": 1.0,
        "backoff_cap": 2.0,
        "healthy_after": 5.0,
        "tick": 0.5,
        "stop_grace": 2.0,
        "start_timeout": 8.0,
    }
    settings.update(overrides)
    return Supervisor(hls_root, **settings)  # type: ignore[arg-type]


@pytest.fixture
def supervisor(hls_root: Path, status_log: StatusLog) -> Iterator[Supervisor]:
    sup = make_supervisor(hls_root, status_log)
    yield sup
    sup.shutdown()


def segments_in(playlist: Path) -> list[str]:
    return [line for line in playlist.read_text().splitlines() if line.endswith(".ts")]


def running_pid(sup: Supervisor, camera_id: str) -> int | None:
    state = sup.state(camera_id)
    return state.pid if state is not None else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------- streaming


def test_playlist_appears_and_advances(cameras: CameraFactory, supervisor: Supervisor) -> None:
    camera = cameras()
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="parent-1")

    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    playlist = supervisor.playlist("kitchen1")
    newest = segments_in(playlist)[-1]
    assert (playlist.parent / newest).stat().st_size > 0

    assert wait_until(lambda: segments_in(playlist)[-1] != newest, timeout=3)
    listed = segments_in(playlist)
    assert newest in listed[:-1]  # a live window: the new segment is appended after it


def test_one_ffmpeg_serves_every_viewer(cameras: CameraFactory, supervisor: Supervisor) -> None:
    camera = cameras()
    source = CameraSource("kitchen1", camera.url)
    supervisor.watch(source, viewer="parent-1")
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    pid = running_pid(supervisor, "kitchen1")

    supervisor.watch(source, viewer="parent-2")
    supervisor.watch(source, viewer="inspector-1")

    assert running_pid(supervisor, "kitchen1") == pid
    assert processes_mentioning(str(supervisor.hls_dir("kitchen1")) + "/") == [pid]
    assert supervisor.state("kitchen1").viewers == 3


def test_stream_stops_idle_timeout_after_the_last_lease_expires(
    cameras: CameraFactory, supervisor: Supervisor, status_log: StatusLog
) -> None:
    camera = cameras()
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="parent-1", ttl=2.0)
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)

    # Lease (2 s) + idle timeout (1 s) from the watch call, plus a watchdog tick.
    assert wait_until(lambda: not supervisor.state("kitchen1").running, timeout=5)
    assert not supervisor.hls_dir("kitchen1").exists()
    assert status_log.statuses("kitchen1") == [Status.ONLINE]  # idle is not offline


def test_stream_starts_again_on_demand_after_an_idle_stop(
    cameras: CameraFactory, supervisor: Supervisor
) -> None:
    camera = cameras()
    source = CameraSource("kitchen1", camera.url)
    supervisor.watch(source, viewer="parent-1")
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    first_pid = running_pid(supervisor, "kitchen1")
    supervisor.release("kitchen1", "parent-1")
    assert wait_until(lambda: not supervisor.state("kitchen1").running, timeout=4)

    supervisor.watch(source, viewer="parent-2")

    assert wait_until(lambda: running_pid(supervisor, "kitchen1") not in (None, first_pid), 2)
    assert wait_until(lambda: supervisor.newest_segment("kitchen1") is not None, timeout=8)


def test_keep_warm_runs_the_stream_until_the_window_ends(supervisor: Supervisor) -> None:
    until = datetime.now(UTC) + timedelta(seconds=2)
    supervisor.keep_warm(CameraSource("sim1", "sim://warm"), until, reason="lunch window")

    assert supervisor.state("sim1").running
    assert supervisor.state("sim1").reasons == ("lunch window",)
    time.sleep(2.5)
    assert supervisor.state("sim1").running  # within the idle timeout after the window
    assert wait_until(lambda: not supervisor.state("sim1").running, timeout=3)


def test_withholding_keeps_only_the_named_leases_and_stops_at_once_without_them(
    hls_root: Path, status_log: StatusLog
) -> None:
    # A long idle timeout: a stream stopped within it was stopped by the withholding.
    sup = make_supervisor(hls_root, status_log, idle_timeout=30.0)
    try:
        source = CameraSource("sim1", "sim://kitchen")
        sup.keep_warm(source, datetime.now(UTC) + timedelta(hours=1), reason="lunch window")
        sup.watch(source, viewer="parent-1")
        sup.watch(source, viewer="inspector-1")
        assert sup.wait_for_status("sim1", Status.ONLINE, timeout=8)

        sup.withhold("sim1", keep={"inspector-1"})
        state = sup.state("sim1")
        assert (state.viewers, state.warm_until, state.running) == (1, None, True)
        time.sleep(1.0)  # two watchdog ticks: still wanted by the inspector
        assert sup.state("sim1").running

        sup.withhold("sim1")
        assert wait_until(lambda: not sup.state("sim1").running, timeout=5)
        assert not sup.hls_dir("sim1").exists()
        sup.withhold("unknown")  # a camera it never ran: nothing to take back
    finally:
        sup.shutdown()


def test_simulated_camera_produces_a_playlist(supervisor: Supervisor) -> None:
    supervisor.ensure_running(CameraSource("sim1", "sim://kitchen"), "demo", for_seconds=30)

    assert supervisor.wait_for_status("sim1", Status.ONLINE, timeout=8)
    playlist = supervisor.playlist("sim1")
    assert segments_in(playlist)
    assert "#EXT-X-PROGRAM-DATE-TIME" in playlist.read_text()


def test_b_frame_high_profile_camera_gives_valid_hls(
    cameras: CameraFactory, supervisor: Supervisor
) -> None:
    camera = cameras(bframes=True)
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="parent-1")

    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    playlist = supervisor.playlist("kitchen1")
    assert wait_until(lambda: len(segments_in(playlist)) >= 2, timeout=5)
    segment = playlist.parent / segments_in(playlist)[-1]
    probed = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,has_b_frames,nb_read_frames",
            "-of",
            "default=nw=1",
            str(segment),
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert "codec_name=h264" in probed.stdout
    assert "profile=High" in probed.stdout
    assert "has_b_frames=2" in probed.stdout
    frames = int(re.search(r"nb_read_frames=(\d+)", probed.stdout).group(1))
    assert frames >= 20  # about one second at 25 fps, all decodable
    assert running_pid(supervisor, "kitchen1") is not None  # did not die on the timestamps


def test_a_camera_that_cannot_be_copied_is_transcoded_to_h264_main_without_b_frames(
    cameras: CameraFactory, supervisor: Supervisor
) -> None:
    # HEVC: no browser and not WeChat's player decode it, so it must not be copied.
    camera = cameras(codec="h265", width=640, height=360)
    mode = probe(camera.url, read_seconds=1.5).video_mode
    assert mode == "transcode"
    supervisor.watch(CameraSource("kitchen1", camera.url, video=mode), viewer="parent-1")

    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=15)
    playlist = supervisor.playlist("kitchen1")
    assert wait_until(lambda: len(segments_in(playlist)) >= 2, timeout=10)
    video = probe_segment(playlist.parent / segments_in(playlist)[-1])
    assert video["codec_name"] == "h264"
    assert video["profile"] == "Main"
    assert video["has_b_frames"] == "0"
    assert video["pix_fmt"] == "yuv420p"
    assert int(video["nb_read_frames"]) >= 20  # about one second at 25 fps, all decodable


# ------------------------------------------------------------------------ failures


def test_camera_killed_is_offline_quickly_and_online_soon_after_it_returns(
    cameras: CameraFactory, hls_root: Path, status_log: StatusLog
) -> None:
    # The production backoff cap: without the refused-port recheck the fourth attempt would
    # come 15 s after the drop, long after the camera is back.
    with make_supervisor(hls_root, status_log, backoff_cap=60.0) as sup:
        camera = cameras()
        sup.watch(CameraSource("kitchen1", camera.url), viewer="inspector-1")
        assert sup.wait_for_status("kitchen1", Status.ONLINE, timeout=8)

        camera.kill()
        dropped = time.monotonic()
        assert sup.wait_for_status("kitchen1", Status.OFFLINE, timeout=10)
        assert time.monotonic() - dropped < 10

        time.sleep(max(0.0, dropped + 7.5 - time.monotonic()))
        camera.start()
        back = time.monotonic()
        assert sup.wait_for_status("kitchen1", Status.ONLINE, timeout=5)
        assert time.monotonic() - back < 5
        assert sup.state("kitchen1").reconnects_last_hour >= 1


def test_ffmpeg_that_cannot_start_is_offline_and_retried_with_doubling_backoff(
    hls_root: Path, status_log: StatusLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="media.supervisor")
    with make_supervisor(
        hls_root,
        status_log,
        ffmpeg_bin="/nonexistent/ffmpeg",
        backoff_initial=0.1,
        backoff_cap=0.4,
    ) as sup:
        sup.ensure_running(CameraSource("sim1", "sim://kitchen"), "demo", for_seconds=30)

        assert sup.wait_for_status("sim1", Status.OFFLINE, timeout=2)
        assert wait_until(lambda: sup.state("sim1").reconnects_last_hour >= 5, timeout=3)

    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "restarting" in r.msg]
    assert delays[:5] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s", "0.4 s"]
    assert "cannot start ffmpeg" in status_log.events[0][2].reason
    assert status_log.statuses("sim1") == [Status.OFFLINE]  # changes only


def test_first_connection_failure_is_retried_until_the_camera_appears(
    cameras: CameraFactory, supervisor: Supervisor, status_log: StatusLog
) -> None:
    port = free_port()
    source = CameraSource("kitchen1", f"rtsp://127.0.0.1:{port}/cam")
    supervisor.watch(source, viewer="technician-1")
    assert supervisor.wait_for_status("kitchen1", Status.OFFLINE, timeout=5)

    cameras(port=port)

    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    assert status_log.statuses("kitchen1") == [Status.OFFLINE, Status.ONLINE]


def test_hung_camera_is_reported_stalled_and_recovers_after_it_resumes(
    cameras: CameraFactory, supervisor: Supervisor, status_log: StatusLog
) -> None:
    camera = cameras()
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="inspector-1")
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    assert wait_until(lambda: len(segments_in(supervisor.playlist("kitchen1"))) >= 2, 4)
    hung_pid = running_pid(supervisor, "kitchen1")

    camera.pause()
    assert supervisor.wait_for_status("kitchen1", Status.STALLED, timeout=8)
    # The hung ffmpeg was killed, not left waiting on the camera.
    assert hung_pid not in processes_mentioning(str(supervisor.hls_dir("kitchen1")) + "/")

    camera.resume()
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=10)
    statuses = status_log.statuses("kitchen1")
    assert statuses[:2] == [Status.ONLINE, Status.STALLED]
    assert statuses[-1] == Status.ONLINE


def test_killed_ffmpeg_is_restarted(
    cameras: CameraFactory, supervisor: Supervisor, status_log: StatusLog
) -> None:
    camera = cameras()
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="parent-1")
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    first_pid = running_pid(supervisor, "kitchen1")

    os.kill(first_pid, signal.SIGKILL)

    assert wait_until(lambda: running_pid(supervisor, "kitchen1") not in (None, first_pid), 5)
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    assert status_log.statuses("kitchen1") == [Status.ONLINE, Status.OFFLINE, Status.ONLINE]
    exited = status_log.events[1][2]
    assert exited.exit_code == -signal.SIGKILL
    assert exited.reconnects_last_hour == 1
    assert supervisor.state("kitchen1").reconnects_last_hour == 1


def test_credentials_never_appear_in_kept_stderr_or_status(
    cameras: CameraFactory, supervisor: Supervisor, status_log: StatusLog
) -> None:
    camera = cameras(auth="admin:s3cret")
    url = camera.url_with_credentials("admin", "s3cret")
    supervisor.watch(CameraSource("kitchen1", url), viewer="inspector-1")
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)

    camera.kill()  # the reconnect attempts print the URL: "rtsp://…: Connection refused"
    assert supervisor.wait_for_status("kitchen1", Status.OFFLINE, timeout=10)
    assert wait_until(
        lambda: any(
            "Connection refused" in line for line in supervisor.state("kitchen1").stderr_tail
        ),
        timeout=5,
    )

    state = supervisor.state("kitchen1")
    kept = "\n".join(state.stderr_tail)
    reported = "\n".join(repr(info) for _, _, info in status_log.events)
    assert "rtsp://***@127.0.0.1" in kept
    assert "s3cret" not in kept and "s3cret" not in reported and "s3cret" not in repr(state)


# ------------------------------------------------------------------------ shutdown


def test_shutdown_leaves_no_ffmpeg_behind(
    cameras: CameraFactory, hls_root: Path, status_log: StatusLog
) -> None:
    camera = cameras()
    sup = make_supervisor(hls_root, status_log)
    sup.watch(CameraSource("kitchen1", camera.url), viewer="parent-1")
    sup.ensure_running(CameraSource("sim1", "sim://kitchen"), "demo", for_seconds=30)
    assert sup.wait_for_status("kitchen1", Status.ONLINE, timeout=8)
    assert sup.wait_for_status("sim1", Status.ONLINE, timeout=8)
    assert len(processes_mentioning(str(hls_root) + "/")) == 2

    sup.shutdown()

    assert processes_mentioning(str(hls_root) + "/") == []
    assert not any(t.name.startswith("media-") for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        sup.watch(CameraSource("kitchen1", camera.url), viewer="parent-2")


def test_stop_ends_the_stream_at_once_whatever_the_demand(
    cameras: CameraFactory, supervisor: Supervisor
) -> None:
    camera = cameras()
    supervisor.watch(CameraSource("kitchen1", camera.url), viewer="parent-1", ttl=600)
    assert supervisor.wait_for_status("kitchen1", Status.ONLINE, timeout=8)

    assert supervisor.stop("kitchen1")

    assert processes_mentioning(str(supervisor.hls_dir("kitchen1")) + "/") == []
    assert not supervisor.hls_dir("kitchen1").exists()


def test_stop_kills_a_hung_ffmpeg_after_the_sigterm_grace(
    cameras: CameraFactory, hls_root: Path, status_log: StatusLog
) -> None:
    # A watchdog that would not call it stalled for 30 s: this is the stop path alone.
    with make_supervisor(hls_root, status_log, stall_factor=30.0, stop_grace=1.5) as sup:
        camera = cameras()
        sup.watch(CameraSource("kitchen1", camera.url), viewer="parent-1", ttl=600)
        assert sup.wait_for_status("kitchen1", Status.ONLINE, timeout=10)
        pid = running_pid(sup, "kitchen1")
        assert pid is not None

        os.kill(pid, signal.SIGSTOP)  # hung: a stopped process acts on no SIGTERM
        try:
            started = time.monotonic()
            stopped = sup.stop("kitchen1", timeout=15)
            took = time.monotonic() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

        assert stopped
        assert not alive(pid)
        assert processes_mentioning(str(sup.hls_dir("kitchen1")) + "/") == []
        # It waited out the grace for the SIGTERM that could not work, then killed.
        assert 1.4 <= took < 1.5 + 5.0, took
        assert status_log.statuses("kitchen1") == [Status.ONLINE]  # a stop is not a failure


def test_kept_stderr_is_the_last_hundred_lines(
    hls_root: Path, status_log: StatusLog, tmp_path: Path
) -> None:
    chatty = tmp_path / "ffmpeg"
    chatty.write_text(
        "#!/bin/sh\n"
        "i=1\n"
        'while [ "$i" -le 250 ]; do echo "ffmpeg line $i" >&2; i=$((i + 1)); done\n'
        "exec sleep 60\n"
    )
    chatty.chmod(0o755)
    with make_supervisor(hls_root, status_log, ffmpeg_bin=str(chatty), start_timeout=60) as sup:
        sup.ensure_running(CameraSource("sim1", "sim://kitchen"), "test", for_seconds=60)

        def tail() -> tuple[str, ...]:
            return sup.state("sim1").stderr_tail

        assert wait_until(lambda: tail()[-1:] == ("ffmpeg line 250",), timeout=10)
        kept = tail()

    assert len(kept) == 100
    assert kept[0] == "ffmpeg line 151"


def test_production_backoff_starts_at_one_second_and_doubles_to_a_minute(hls_root: Path) -> None:
    supervisor = Supervisor(hls_root)  # the defaults `flask bk media` runs with

    assert supervisor.backoff_schedule(9) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_stray_ffmpeg_from_a_dead_supervisor_is_killed(hls_root: Path) -> None:
    out = hls_root / "orphan"
    out.mkdir(parents=True)
    stray = subprocess.Popen(
        argv.hls_argv("sim://orphan", out),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: processes_mentioning(str(out)) == [stray.pid], timeout=2)

        assert kill_stray_ffmpeg(hls_root) == 1

        assert stray.wait(5) == -signal.SIGKILL
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()
