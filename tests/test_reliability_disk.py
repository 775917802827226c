"""Disk: the HLS folders stay bounded however long cameras stream.

Two cameras are kept warm by the media supervisor (real ffmpeg against the GStreamer RTSP test
camera, production HLS settings: 1-s segments, a list of 6, old segments deleted), and every few
minutes one of them loses power and comes back, so restarts are part of the run. The size and
the file count of the HLS root are sampled all along: after the first minute neither may grow,
and when the supervisor stops, nothing is left.

Duration: `BK_SOAK_SECONDS`, else 30 s in CI and an hour with `BK_RELIABILITY_FULL=1`
(it touches no database, so only the SQLite pass runs it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media.supervisor import CameraSource, Status, Supervisor
from tests.conftest import PG_URL
from tests.media_helpers import CameraFactory, fakecam_factory
from tests.reliability_support import full_run
from tests.test_media_supervisor import StatusLog, make_supervisor

# It touches no database: the SQLite pass of the suite runs it, the PostgreSQL pass need not.
pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(bool(PG_URL), reason="no database involved; run on the SQLite pass"),
]

SECONDS = float(os.environ.get("BK_SOAK_SECONDS") or (3600 if full_run() else 30))
SAMPLE_EVERY = 5.0 if SECONDS > 300 else 1.0
RESTART_EVERY = 300.0 if SECONDS > 300 else 12.0
WARM_UP = min(60.0, SECONDS / 3)


@pytest.fixture
def cameras() -> Iterator[CameraFactory]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam


def _usage(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    size = 0
    for p in files:
        with contextlib.suppress(FileNotFoundError):  # ffmpeg deleted it meanwhile
            size += p.stat().st_size
    return len(files), size


def test_hls_folders_stay_bounded_while_cameras_stream(tmp_path: Path, cameras: CameraFactory):
    root = tmp_path / "hls"
    feeds = [cameras(width=1280, height=720, fps=25), cameras(width=1280, height=720, fps=25)]
    sup: Supervisor = make_supervisor(root, StatusLog(), healthy_after=5.0)
    until = datetime.now(UTC) + timedelta(seconds=SECONDS + 3600)  # warm for longer than the run
    for n, feed in enumerate(feeds):
        sup.keep_warm(CameraSource(f"cam{n}", feed.url), until, "soak")
    samples: list[tuple[float, int, int]] = []
    restarts = 0
    try:
        for n in range(len(feeds)):
            assert sup.wait_for_status(f"cam{n}", Status.ONLINE, timeout=20)
        started = time.monotonic()
        next_restart = started + RESTART_EVERY
        while (elapsed := time.monotonic() - started) < SECONDS:
            files, size = _usage(root)
            samples.append((elapsed, files, size))
            if time.monotonic() >= next_restart:
                victim = feeds[restarts % len(feeds)]
                victim.kill()
                victim.restart()
                restarts += 1
                next_restart += RESTART_EVERY
            time.sleep(SAMPLE_EVERY)
        for n in range(len(feeds)):
            assert sup.wait_for_status(f"cam{n}", Status.ONLINE, timeout=30)
    finally:
        sup.shutdown()

    early = [s for s in samples if s[0] <= WARM_UP]
    late = [s for s in samples if s[0] > WARM_UP]
    assert early and late
    early_files = max(s[1] for s in early)
    early_size = max(s[2] for s in early)
    late_files = max(s[1] for s in late)
    late_size = max(s[2] for s in late)
    # A playlist of six plus the segment being written and the few kept for players that are
    # behind (ffmpeg's delete threshold): about ten files a camera, whatever the duration.
    assert late_files <= 12 * len(feeds), samples[-5:]
    # Segments vary with the picture; the whole folder may not outgrow its first minute.
    assert late_size <= 1.5 * early_size, (early_size, late_size)
    assert restarts >= 1
    assert _usage(root) == (0, 0), list(root.rglob("*"))  # stopping cleans up

    print(
        f"\n== HLS disk over {SECONDS:g} s, {len(feeds)} cameras at 720p25, "
        f"{restarts} camera restarts ({'full' if full_run() else 'quick'} run) ==\n"
        f"first {WARM_UP:g} s: at most {early_files} files, {early_size / 1024:.0f} KiB\n"
        f"after:        at most {late_files} files, {late_size / 1024:.0f} KiB\n"
        f"after stop:   0 files"
    )
    for minute in range(0, int(SECONDS // 60) + 1, max(1, int(SECONDS // 60) // 6 or 1)):
        window = [s for s in samples if minute * 60 <= s[0] < (minute + 1) * 60]
        if window:
            print(
                f"  minute {minute:>3}: {max(s[1] for s in window)} files, "
                f"{max(s[2] for s in window) / 1024:.0f} KiB"
            )
