"""Snapshots and tamper checks on pictures from the real RTSP test camera."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.snapshot import (
    SingleFlight,
    SnapshotError,
    is_black,
    is_frozen,
    take_snapshot,
)
from media.supervisor import CameraSource, Status, Supervisor
from tests.media_helpers import FakeCamera, fakecam_factory

JPEG_START = b"\xff\xd8"


@pytest.fixture(scope="module")
def live_camera() -> Iterator[FakeCamera]:
    """A static test card with a wall clock, like a quiet kitchen under the camera's OSD."""
    with fakecam_factory() as start_fakecam:
        yield start_fakecam()


@pytest.fixture(scope="module")
def black_camera() -> Iterator[FakeCamera]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam(pattern="black")


@pytest.fixture(scope="module")
def frozen_camera() -> Iterator[FakeCamera]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam(frozen=True)


def two_snapshots_apart(url: str, seconds: float = 1.1) -> list[bytes]:
    first = take_snapshot(url).jpeg
    time.sleep(seconds)
    return [first, take_snapshot(url).jpeg]


def test_snapshot_pulled_from_the_camera_is_a_jpeg_with_its_hash(live_camera: FakeCamera) -> None:
    shot = take_snapshot(live_camera.url)

    assert shot.jpeg.startswith(JPEG_START)
    assert shot.sha256 == hashlib.sha256(shot.jpeg).hexdigest()
    assert shot.source == "pull"


def test_snapshot_of_a_running_stream_comes_from_its_newest_segment(tmp_path: Path) -> None:
    with Supervisor(tmp_path / "hls", idle_timeout=30) as supervisor:
        source = CameraSource("sim1", "sim://kitchen")
        supervisor.ensure_running(source, "snapshot")
        assert supervisor.wait_for_status("sim1", Status.ONLINE, timeout=8)

        started = time.monotonic()
        shot = take_snapshot(source.url, segment=supervisor.newest_segment("sim1"))

        assert shot.source == "segment"
        assert shot.jpeg.startswith(JPEG_START)
        assert time.monotonic() - started < 1.0


def test_snapshot_falls_back_to_a_pull_when_the_segment_is_gone(
    live_camera: FakeCamera, tmp_path: Path
) -> None:
    shot = take_snapshot(live_camera.url, segment=tmp_path / "seg_1.ts")

    assert shot.source == "pull"
    assert shot.jpeg.startswith(JPEG_START)


def test_snapshot_of_an_unreachable_camera_fails_without_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(SnapshotError) as failure:
        take_snapshot(f"rtsp://admin:s3cret@127.0.0.1:{port}/cam", timeout=5)

    assert "Connection refused" in str(failure.value)
    assert "s3cret" not in str(failure.value)


def test_covered_lens_is_black(black_camera: FakeCamera) -> None:
    assert is_black(take_snapshot(black_camera.url).jpeg)


def test_live_picture_is_not_black(live_camera: FakeCamera) -> None:
    assert not is_black(take_snapshot(live_camera.url).jpeg)


def test_frozen_picture_is_frozen(frozen_camera: FakeCamera) -> None:
    assert is_frozen(two_snapshots_apart(frozen_camera.url))


def test_still_scene_with_a_running_clock_is_not_frozen(live_camera: FakeCamera) -> None:
    assert not is_frozen(two_snapshots_apart(live_camera.url))


def test_concurrent_snapshots_of_one_camera_share_one_pull() -> None:
    flight = SingleFlight()
    calls = []
    gate = threading.Event()

    def pull() -> str:
        calls.append(1)
        gate.wait(2)
        return "picture"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(flight.run("cam1", pull))) for _ in range(5)
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)

    assert results == ["picture"] * 5
    assert len(calls) == 1
