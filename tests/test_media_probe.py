"""Commissioning probes: measured from real packets of the real RTSP test camera."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from media.probe import CommissioningRules, ProbeResult, evaluate, parse_report, probe
from tests.media_helpers import CameraFactory, fakecam_factory


@pytest.fixture
def cameras() -> Iterator[CameraFactory]:
    with fakecam_factory() as start_fakecam:
        yield start_fakecam


def verdicts(result: ProbeResult) -> dict[str, bool]:
    return {r.rule: r.passed for r in evaluate(result)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_720p_camera_with_1s_gop_passes_every_rule(cameras: CameraFactory) -> None:
    camera = cameras(width=1280, height=720, fps=25, gop=25)

    result = probe(camera.url, read_seconds=2.5)

    assert result.reachable
    assert (result.codec, result.width, result.height, result.bit_depth) == ("h264", 1280, 720, 8)
    assert result.fps == pytest.approx(25, abs=1)
    assert result.keyframe_interval == pytest.approx(1.0, abs=0.1)
    assert result.video_mode == "copy"
    assert verdicts(result) == {
        "reachable": True,
        "codec": True,
        "resolution": True,
        "frame_rate": True,
        "keyframe_interval": True,
    }


def test_480p_camera_with_4s_gop_fails_resolution_and_keyframe_interval(
    cameras: CameraFactory,
) -> None:
    camera = cameras(width=640, height=480, fps=25, gop=100)

    result = probe(camera.url, read_seconds=4.5)

    assert (result.width, result.height) == (640, 480)
    assert result.keyframe_interval == pytest.approx(4.0, abs=0.1)
    assert verdicts(result) == {
        "reachable": True,
        "codec": True,
        "resolution": False,
        "frame_rate": True,
        "keyframe_interval": False,
    }
    measured = {r.rule: r.measured for r in evaluate(result)}
    assert measured["resolution"] == "640x480"
    assert measured["keyframe_interval"] == "4 s"


def test_camera_that_is_down_is_unreachable_and_fails_everything() -> None:
    url = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/cam"

    result = probe(url, read_seconds=1)

    assert not result.reachable
    assert "Connection refused" in (result.error or "")
    assert "s3cret" not in repr(result) and "s3cret" not in repr(evaluate(result))
    assert not any(verdicts(result).values())


def test_simulated_camera_is_measured_from_its_encoded_output() -> None:
    result = probe("sim://kitchen", read_seconds=2.5)

    assert (result.codec, result.width, result.height) == ("h264", 1280, 720)
    assert result.keyframe_interval == pytest.approx(1.0, abs=0.1)
    assert all(verdicts(result).values())


def test_a_single_keyframe_in_the_sample_is_only_a_lower_bound() -> None:
    report = {
        "streams": [{"codec_name": "h264", "pix_fmt": "yuv420p", "width": 1280, "height": 720}],
        "packets": [
            {"pts_time": f"{i / 25:.2f}", "flags": "K_" if i == 0 else "__"} for i in range(76)
        ],
    }

    result = parse_report("rtsp://cam/1", report)

    assert result.keyframe_interval is None
    assert result.keyframe_interval_at_least == pytest.approx(3.0)
    kfi = next(r for r in evaluate(result) if r.rule == "keyframe_interval")
    assert not kfi.passed and kfi.measured == ">3 s"


def test_rules_take_their_limits_from_the_checklist() -> None:
    result = ProbeResult(
        url="rtsp://cam/1",
        reachable=True,
        codec="h264",
        width=1920,
        height=1080,
        fps=12.0,
        keyframe_interval=1.0,
    )

    assert {r.rule: r.passed for r in evaluate(result, CommissioningRules(min_fps=10))}[
        "frame_rate"
    ]
    assert not verdicts(result)["frame_rate"]
