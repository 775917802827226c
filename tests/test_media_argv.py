"""The ffmpeg/ffprobe commands the media layer runs, checked as data (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media import argv
from media.redact import redact

CAMERA = "rtsp://admin:s3cret@10.0.0.7:554/Streaming/Channels/101"
FONT = "/fonts/Sans.ttf"


def value_of(args: list[str], option: str) -> str:
    """The value following ``option``; fails the test if the option is missing."""
    assert option in args, f"{option} missing from {args}"
    return args[args.index(option) + 1]


def is_input_option(args: list[str], option: str) -> bool:
    return option in args and args.index(option) < args.index("-i")


# ---------------------------------------------------------------- camera → HLS


def test_camera_pull_uses_tcp_a_socket_timeout_and_timestamp_repair() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7")

    assert value_of(args, "-rtsp_transport") == "tcp"
    assert value_of(args, "-timeout") == "5000000"
    assert value_of(args, "-fflags") == "+genpts+discardcorrupt"
    assert all(is_input_option(args, o) for o in ("-rtsp_transport", "-timeout", "-fflags"))
    assert value_of(args, "-i") == CAMERA


def test_h264_camera_is_copied_not_transcoded() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7", video="copy")

    assert value_of(args, "-c:v") == "copy"
    assert "libx264" not in args
    # B-frame cameras send a first packet without PTS; the fix must come with every copy.
    assert value_of(args, "-bsf:v") == argv.COPY_TIMESTAMP_FIX


def test_transcode_gives_h264_main_without_b_frames_and_a_fixed_gop() -> None:
    settings = argv.TranscodeSettings(fps=20, gop_seconds=1.0)
    args = argv.hls_argv(CAMERA, "/hls/7", video="transcode", transcode=settings)

    assert value_of(args, "-c:v") == "libx264"
    assert value_of(args, "-profile:v") == "main"
    assert value_of(args, "-pix_fmt") == "yuv420p"
    assert value_of(args, "-bf") == "0"
    assert value_of(args, "-g") == value_of(args, "-keyint_min") == "20"
    assert value_of(args, "-sc_threshold") == "0"
    assert value_of(args, "-force_key_frames") == "expr:gte(t,n_forced*1)"
    assert "-bsf:v" not in args


def test_hls_output_is_short_live_segments_deleted_by_ffmpeg() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7", hls=argv.HlsSettings(segment_seconds=1, list_size=6))

    assert value_of(args, "-f") == "hls"
    assert value_of(args, "-hls_time") == "1"
    assert value_of(args, "-hls_list_size") == "6"
    flags = value_of(args, "-hls_flags").split("+")
    assert {"delete_segments", "independent_segments", "temp_file", "omit_endlist"} <= set(flags)
    assert value_of(args, "-hls_segment_filename") == "/hls/7/seg_%d.ts"
    assert value_of(args, "-hls_start_number_source") == "epoch_us"
    assert value_of(args, "-hls_init_time") == "0.5"  # first segment as soon as possible
    assert args[-2:] == ["/hls/7/index.m3u8", "-y"]


def test_no_audio_by_default() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7")

    assert "-an" in args
    assert value_of(args, "-map") == "0:v:0"


def test_audio_is_optional_aac_lc_from_the_same_connection() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7", audio=True)

    assert "-an" not in args
    assert "0:a:0?" in args  # a camera without a microphone still works
    assert value_of(args, "-c:a") == "aac"
    assert args.count("-i") == 1


def test_commands_start_quiet_and_never_read_stdin() -> None:
    args = argv.hls_argv(CAMERA, "/hls/7")

    assert args[0] == "ffmpeg"
    assert args[1:6] == ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning"]


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "mode"),
    [
        ("h264", "yuv420p", "copy"),
        ("h264", "yuvj420p", "copy"),
        ("h264", "yuv420p10le", "transcode"),
        ("h264", "yuv422p", "transcode"),
        ("hevc", "yuv420p", "transcode"),
        (None, None, "copy"),
    ],
)
def test_only_8_bit_420_h264_is_copied(codec: str | None, pix_fmt: str | None, mode: str) -> None:
    assert argv.choose_video_mode(codec, pix_fmt) == mode


# ----------------------------------------------------------------- simulated camera


def test_simulated_camera_is_a_live_paced_test_picture_with_a_clock() -> None:
    args = argv.hls_argv("sim://kitchen", "/hls/sim", fontfile=FONT)

    assert value_of(args, "-f") == "lavfi"
    assert is_input_option(args, "-re")
    assert value_of(args, "-i") == "testsrc2=size=1280x720:rate=25"
    graph = value_of(args, "-filter_complex")
    assert "drawtext" in graph and "localtime" in graph and FONT in graph
    assert value_of(args, "-c:v") == "libx264"
    assert value_of(args, "-preset") == "ultrafast"
    assert value_of(args, "-g") == "25"
    assert "-rtsp_transport" not in args


def test_simulated_camera_without_a_font_draws_no_text() -> None:
    args = argv.hls_argv("sim://kitchen", "/hls/sim", fontfile=None)

    assert "drawtext" not in " ".join(args)


def test_simulated_camera_parameters_come_from_the_url() -> None:
    sim = argv.parse_simulated("sim://cooking-1?width=640&height=360&fps=15&pattern=black")

    assert sim == argv.SimulatedSource("cooking-1", 640, 360, 15, "black")


def test_simulated_camera_rejects_an_unknown_pattern() -> None:
    with pytest.raises(ValueError, match="pattern"):
        argv.parse_simulated("sim://x?pattern=nope")


# ------------------------------------------------------------ snapshots and probing


def test_snapshot_from_a_segment_decodes_one_keyframe_to_jpeg_on_stdout() -> None:
    args = argv.snapshot_from_segment_argv(Path("/hls/7/seg_1.ts"))

    assert value_of(args, "-i") == "/hls/7/seg_1.ts"
    assert is_input_option(args, "-skip_frame")
    assert value_of(args, "-frames:v") == "1"
    assert value_of(args, "-c:v") == "mjpeg"
    assert args[-1] == "pipe:1"


def test_snapshot_pull_probes_minimally() -> None:
    args = argv.snapshot_from_source_argv(CAMERA)

    assert value_of(args, "-analyzeduration") == "0"
    assert value_of(args, "-probesize") == "32768"
    assert value_of(args, "-rtsp_transport") == "tcp"
    assert value_of(args, "-skip_frame") == "nokey"
    assert is_input_option(args, "-analyzeduration")


def test_probe_reads_packets_for_a_bounded_time() -> None:
    args = argv.ffprobe_argv(CAMERA, read_seconds=4)

    assert args[0] == "ffprobe"
    assert value_of(args, "-read_intervals") == "%+4"
    entries = value_of(args, "-show_entries")
    assert "packet=pts_time,dts_time,flags" in entries
    assert "stream=codec_name" in entries
    assert value_of(args, "-select_streams") == "v:0"
    assert value_of(args, "-rtsp_transport") == "tcp"
    assert value_of(args, "-timeout") == "5000000"
    assert args[-1] == CAMERA


# ----------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[error] rtsp://admin:s3cret@10.0.0.7:554/cam: Connection refused",
            "[error] rtsp://***@10.0.0.7:554/cam: Connection refused",
        ),
        ("from 'rtsp://admin:p@ss@host/cam'", "from 'rtsp://***@host/cam'"),
        (
            "rtsp://10.0.0.7/user=admin&password=123&channel=1",
            "rtsp://10.0.0.7/user=admin&password=***&channel=1",
        ),
        ("rtsp://10.0.0.7:554/cam and a@b.example", "rtsp://10.0.0.7:554/cam and a@b.example"),
    ],
)
def test_credentials_are_stripped_from_text(text: str, expected: str) -> None:
    assert redact(text) == expected
