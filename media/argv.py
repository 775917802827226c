"""Pure builders of ffmpeg and ffprobe argument lists.

Every command the media layer runs is built here, from plain data, so that what we ask ffmpeg
to do can be read and tested as data (STYLE.md rule 8) and the processes that run it stay dumb.
ffmpeg commands are built with ffmpeg-python (``ffmpeg.input(...).output(...).get_args()``);
ffprobe has no builder there, so its few arguments are listed by hand.

The choices below follow DESIGN.md "Media rules" and what was measured on ffmpeg 5.1
(TESTING.md); the why of each is next to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import ffmpeg

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

PLAYLIST_NAME = "index.m3u8"
# Numbered by media sequence, which starts at epoch microseconds (see hls_output_options), so a
# restarted ffmpeg never reuses a name a player may still have cached.
SEGMENT_TEMPLATE = "seg_%d.ts"
SEGMENT_SUFFIX = ".ts"

# Socket I/O timeout of the RTSP demuxer, in microseconds. Without it a hung camera hangs
# ffmpeg forever; with it ffmpeg gives up on a dead connection by itself.
RTSP_TIMEOUT_US = 5_000_000
RTSP_SCHEMES = ("rtsp", "rtsps")
SIMULATED_SCHEME = "sim"

# Quiet enough that the kept stderr tail holds errors, not one "Opening segment" line per second.
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning")

# Stream copy from cameras that send B-frames (High profile): the first RTP packet comes with no
# PTS, the MPEG-TS muxer refuses it ("first pts and dts value must be set") and ffmpeg exits at
# once. Giving such a packet its DTS as PTS keeps the stream going; it changes nothing when the
# camera's timestamps are complete. Commas are escaped for the bitstream-filter list parser.
COPY_TIMESTAMP_FIX = r"setts=pts=if(eq(PTS\,NOPTS)\,DTS\,PTS)"

# 8-bit 4:2:0 is what every browser and WeChat's player decode; anything else is transcoded.
COPYABLE_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)

VideoMode = Literal["copy", "transcode"]


@dataclass(frozen=True)
class HlsSettings:
    """Segment length and list size of the live playlist (DESIGN: ~1–2 s, short list)."""

    segment_seconds: float = 1.0
    list_size: int = 6
    # Cut the first segments at the first keyframe after this long. Over RTSP the first
    # keyframe's timestamp is guessed a frame late, so with hls_time 1 and a 1 s GOP the next
    # keyframe comes 0.96 s after it, misses the cut, and the first segment (the viewer's
    # start-up wait) lasts 2 s; measured first playlist 2.3 s → 1.3 s. None: no early cut.
    first_segment_seconds: float | None = 0.5


@dataclass(frozen=True)
class TranscodeSettings:
    """How a camera that cannot be copied is re-encoded to H.264 Main."""

    preset: str = "veryfast"
    gop_seconds: float = 1.0
    # Only used for -g/-keyint_min; keyframes are also forced by time, so a wrong guess (or a
    # variable-frame-rate camera) still gets one keyframe per gop_seconds.
    fps: float = 25.0
    max_height: int | None = 1080
    max_bitrate_kbps: int = 2500


@dataclass(frozen=True)
class SimulatedSource:
    """A ``sim://name?width=&height=&fps=&pattern=`` camera: a local moving test picture."""

    name: str
    width: int = 1280
    height: int = 720
    fps: int = 25
    pattern: str = "testsrc2"


SIMULATED_PATTERNS = {
    "testsrc2": "testsrc2",
    "testsrc": "testsrc",
    "smptebars": "smptebars",
    "black": "color=c=black",
}


def is_rtsp(url: str) -> bool:
    return urlsplit(url).scheme.lower() in RTSP_SCHEMES


def is_simulated(url: str) -> bool:
    return urlsplit(url).scheme.lower() == SIMULATED_SCHEME


def parse_simulated(url: str) -> SimulatedSource:
    """Read a ``sim://`` URL; unknown parameters are ignored, bad values raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SIMULATED_SCHEME:
        raise ValueError(f"not a simulated camera URL: {parts.scheme}://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    pattern = query.get("pattern", "testsrc2")
    if pattern not in SIMULATED_PATTERNS:
        raise ValueError(f"unknown simulated pattern {pattern!r}")
    # The name ends up inside a filter graph: keep it to characters that need no escaping.
    name = re.sub(r"[^A-Za-z0-9_-]", "", parts.hostname or "") or "kitchen"
    return SimulatedSource(
        name=name,
        width=int(query.get("width", 1280)),
        height=int(query.get("height", 720)),
        fps=int(query.get("fps", 25)),
        pattern=pattern,
    )


def find_font(candidates: Sequence[str] = FONT_CANDIDATES) -> str | None:
    """The first installed font for the simulated camera's clock, or None (then no text).

    Not pure (it looks at the disk); callers resolve it once and pass it to the builders."""
    return next((path for path in candidates if Path(path).is_file()), None)


def choose_video_mode(codec: str | None, pix_fmt: str | None) -> VideoMode:
    """Copy 8-bit 4:2:0 H.264; transcode anything known to be something else.

    An unknown stream (not probed yet) is copied: nearly every kitchen camera sends 8-bit
    H.264, copying costs ~0.5 % of a core against 10–28 % for a transcode, and commissioning
    probes every camera and fails one that is not H.264 before it goes live."""
    if codec is None:
        return "copy"
    if codec.lower() != "h264":
        return "transcode"
    if pix_fmt is not None and pix_fmt.lower() not in COPYABLE_PIX_FMTS:
        return "transcode"
    return "copy"


def rtsp_input_options(timeout_us: int = RTSP_TIMEOUT_US) -> dict[str, object]:
    """Input options for a camera pull: TCP (no lost UDP packets through NAT and Wi-Fi), a
    socket timeout, generated PTS where the camera sends none, corrupt packets dropped."""
    return {
        "rtsp_transport": "tcp",
        "timeout": timeout_us,
        "fflags": "+genpts+discardcorrupt",
    }


def simulated_input(
    url: str, *, fontfile: str | None, realtime: bool = True
) -> ffmpeg.nodes.FilterableStream:
    """The raw video of a simulated camera: a lavfi test pattern with its name and a running
    local clock (drawn only when a font is installed). ``realtime`` paces it like a camera."""
    sim = parse_simulated(url)
    generator = SIMULATED_PATTERNS[sim.pattern]
    separator = ":" if "=" in generator else "="
    source = f"{generator}{separator}size={sim.width}x{sim.height}:rate={sim.fps}"
    options: dict[str, object] = {"f": "lavfi"}
    if realtime:
        options["re"] = None
    video = ffmpeg.input(source, **options).video
    if fontfile is not None:
        text_style = {
            "fontfile": fontfile,
            "fontsize": max(16, sim.height // 18),
            "fontcolor": "white",
            "box": 1,
            "boxcolor": "black@0.6",
            "boxborderw": 8,
        }
        # %F %T: date and time without ":" in the strftime format, so the only ":" is the
        # expansion's own separator and ffmpeg-python's escaping is enough.
        video = video.drawtext(
            text="%{localtime:%F %T}", x=24, y=24, escape_text=False, **text_style
        ).drawtext(text=sim.name, x=24, y="h-th-24", **text_style)
    return video


def open_source(
    url: str, *, fontfile: str | None = None, realtime: bool = True
) -> tuple[ffmpeg.nodes.FilterableStream, ffmpeg.nodes.FilterableStream | None]:
    """The video stream of ``url`` and its optional first audio stream (None: a raw simulated
    picture, which has no audio and must be encoded). One input node, so one connection."""
    if is_simulated(url):
        return simulated_input(url, fontfile=fontfile, realtime=realtime), None
    source = ffmpeg.input(url, **(rtsp_input_options() if is_rtsp(url) else {}))
    # "?": a camera without a microphone is not an error.
    return source["v:0"], source["a:0?"]


def transcode_options(settings: TranscodeSettings) -> dict[str, object]:
    """H.264 Main, no B-frames, a fixed GOP aligned to segment boundaries, bitrate capped.

    Main without B-frames plays everywhere (WeChat's in-app browser included); a fixed GOP with
    scene-cut detection off gives every segment a keyframe at its start and the same length."""
    gop = max(1, round(settings.fps * settings.gop_seconds))
    return {
        "c:v": "libx264",
        "preset": settings.preset,
        "tune": "zerolatency",
        "profile:v": "main",
        "pix_fmt": "yuv420p",
        "bf": 0,
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": 0,
        "force_key_frames": f"expr:gte(t,n_forced*{settings.gop_seconds:g})",
        "maxrate": f"{settings.max_bitrate_kbps}k",
        "bufsize": f"{settings.max_bitrate_kbps * 2}k",
    }


def simulated_encode_options(url: str) -> dict[str, object]:
    """The simulated camera is encoded like a cheap camera would: x264 ultrafast, 1 s GOP."""
    fps = parse_simulated(url).fps
    return {
        "c:v": "libx264",
        "preset": "ultrafast",
        "tune": "zerolatency",
        "profile:v": "main",
        "pix_fmt": "yuv420p",
        "g": fps,
        "keyint_min": fps,
        "sc_threshold": 0,
    }


def hls_output_options(out_dir: str | Path, settings: HlsSettings) -> dict[str, object]:
    """The live HLS muxer: short segments, a short list, old segments deleted by ffmpeg.

    - temp_file: segments appear under their final name only when complete (the playlist is
      always written to a temporary file and renamed for live lists).
    - omit_endlist: when the camera drops ffmpeg ends its input (exit code 0) and would write
      #EXT-X-ENDLIST, which makes players stop for good; without it they keep polling and pick
      the stream up again after the supervisor's restart.
    - discont_start + epoch_us numbering: a restarted process continues with higher sequence
      numbers behind a discontinuity, which players follow without a reload.
    - program_date_time: wall-clock time of each segment, for "what time was this".
    """
    flags = (
        "delete_segments",
        "independent_segments",
        "temp_file",
        "program_date_time",
        "omit_endlist",
        "discont_start",
    )
    options: dict[str, object] = {
        "f": "hls",
        "hls_time": f"{settings.segment_seconds:g}",
        "hls_list_size": settings.list_size,
        "hls_flags": "+".join(flags),
        "hls_start_number_source": "epoch_us",
        "hls_segment_type": "mpegts",
        "hls_segment_filename": str(Path(out_dir) / SEGMENT_TEMPLATE),
    }
    if settings.first_segment_seconds is not None:
        options["hls_init_time"] = f"{settings.first_segment_seconds:g}"
    return options


def hls_argv(
    url: str,
    out_dir: str | Path,
    *,
    video: VideoMode = "copy",
    audio: bool = False,
    hls: HlsSettings = HlsSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    transcode: TranscodeSettings = TranscodeSettings(),  # noqa: B008
    fontfile: str | None = None,
    ffmpeg_bin: str = FFMPEG,
) -> list[str]:
    """One camera's pull: ``url`` (rtsp://, rtsps:// or sim://) → ``out_dir/index.m3u8``.

    Audio, when asked for, is re-encoded to mono AAC-LC (cameras send G.711 or odd AAC
    configurations that browsers refuse); the ``?`` keeps a camera without audio working."""
    video_in, audio_in = open_source(url, fontfile=fontfile)
    options: dict[str, object] = {}
    if audio_in is None:
        options.update(simulated_encode_options(url))
    elif video == "copy":
        options.update({"c:v": "copy", "bsf:v": COPY_TIMESTAMP_FIX})
    else:
        if transcode.max_height is not None:
            video_in = video_in.filter("scale", -2, f"min(ih,{transcode.max_height})")
        options.update(transcode_options(transcode))
    streams = [video_in]
    if audio and audio_in is not None:
        streams.append(audio_in)
        options.update({"c:a": "aac", "b:a": "64k", "ac": 1})
    else:
        options["an"] = None
    options.update(hls_output_options(out_dir, hls))
    playlist = str(Path(out_dir) / PLAYLIST_NAME)
    stream = ffmpeg.output(*streams, playlist, **options).overwrite_output()
    return [ffmpeg_bin, *GLOBAL_ARGS, *stream.get_args()]


def jpeg_output_options(quality: int) -> dict[str, object]:
    """One frame as a JPEG on stdout (quality 2 best … 31 worst)."""
    return {"frames:v": 1, "q:v": quality, "c:v": "mjpeg", "f": "image2pipe"}


def snapshot_from_segment_argv(
    segment: str | Path, *, quality: int = 3, ffmpeg_bin: str = FFMPEG
) -> list[str]:
    """A JPEG of the first frame of a finished HLS segment (≈0.1 s; the camera is untouched).

    Every segment starts with a keyframe, so decoding keyframes only is both fast and clean."""
    stream = ffmpeg.input(str(segment), skip_frame="nokey")["v:0"].output(
        "pipe:1", **jpeg_output_options(quality)
    )
    return [ffmpeg_bin, *_quiet(), *stream.get_args()]


def snapshot_from_source_argv(
    url: str, *, quality: int = 3, fontfile: str | None = None, ffmpeg_bin: str = FFMPEG
) -> list[str]:
    """A JPEG pulled straight from the camera when no stream is running.

    A minimal probe (``-analyzeduration 0 -probesize 32768``) cuts the pull from ≈1.3 s to
    ≈0.3 s; decoding keyframes only means the picture is never the grey smear of frames decoded
    without their reference (real cameras do not start on a keyframe)."""
    if is_simulated(url):
        video = simulated_input(url, fontfile=fontfile, realtime=False)
    else:
        options: dict[str, object] = {
            **(rtsp_input_options() if is_rtsp(url) else {}),
            "analyzeduration": 0,
            "probesize": 32768,
            "skip_frame": "nokey",
        }
        video = ffmpeg.input(url, **options)["v:0"]
    stream = video.output("pipe:1", **jpeg_output_options(quality))
    return [ffmpeg_bin, *_quiet(), *stream.get_args()]


def simulated_clip_argv(
    url: str,
    out_path: str | Path,
    *,
    seconds: float,
    fontfile: str | None = None,
    ffmpeg_bin: str = FFMPEG,
) -> list[str]:
    """A few seconds of the simulated camera's encoded output in an MPEG-TS file, generated
    faster than real time, so it can be probed like a camera."""
    video = simulated_input(url, fontfile=fontfile, realtime=False)
    stream = video.output(
        str(out_path), t=f"{seconds:g}", f="mpegts", **simulated_encode_options(url)
    ).overwrite_output()
    return [ffmpeg_bin, *_quiet(), *stream.get_args()]


PROBE_STREAM_ENTRIES = (
    "codec_name",
    "profile",
    "pix_fmt",
    "bits_per_raw_sample",
    "width",
    "height",
    "r_frame_rate",
    "avg_frame_rate",
)
PROBE_PACKET_ENTRIES = ("pts_time", "dts_time", "flags")


def ffprobe_argv(
    url: str | Path, *, read_seconds: float = 5.0, ffprobe_bin: str = FFPROBE
) -> list[str]:
    """Stream parameters plus every video packet's time and flags for ``read_seconds``.

    The packets are what the keyframe interval is measured from (flag ``K``): the SDP and the
    codec headers do not say how often a camera really sends keyframes. ``-read_intervals``
    bounds the read on a live source, which otherwise never ends."""
    args = [ffprobe_bin, "-hide_banner", "-v", "error"]
    if isinstance(url, str) and is_rtsp(url):
        options = rtsp_input_options()
        args += ["-rtsp_transport", str(options["rtsp_transport"])]
        args += ["-timeout", str(options["timeout"])]
    args += [
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream={}:packet={}".format(
            ",".join(PROBE_STREAM_ENTRIES), ",".join(PROBE_PACKET_ENTRIES)
        ),
        "-read_intervals",
        f"%+{read_seconds:g}",
        "-of",
        "json",
        "-i",
        str(url),
    ]
    return args


def black_frame_argv(*, luma_threshold: int = 32, ffmpeg_bin: str = FFMPEG) -> list[str]:
    """Measure the share of dark pixels of each JPEG piped on stdin (``blackframe`` filter).

    ``amount=0`` makes the filter report every frame, so the caller sees the ratio and applies
    its own limit; threshold 32 covers both full-range (0) and TV-range (16) black."""
    stream = (
        ffmpeg.input("pipe:0", f="image2pipe", c="mjpeg")
        .filter("blackframe", amount=0, threshold=luma_threshold)
        .output("-", f="null")
    )
    return [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "info", *stream.get_args()]


def psnr_argv(first: str | Path, second: str | Path, *, ffmpeg_bin: str = FFMPEG) -> list[str]:
    """Compare two pictures with the ``psnr`` filter (``average:inf`` when identical).

    Not ``freezedetect``: it judges a stretch of frames, and with the two snapshots a frozen
    check has it reports a freeze at the first frame whatever follows. Its mean-difference
    measure also calls a still scene with a ticking OSD clock frozen at the default -60 dB."""
    stream = ffmpeg.filter([ffmpeg.input(str(first)), ffmpeg.input(str(second))], "psnr").output(
        "-", f="null"
    )
    return [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "info", *stream.get_args()]


def _quiet() -> tuple[str, ...]:
    return ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error")
