"""Probe a camera for commissioning: what it really sends, measured from its packets.

A technician's checklist asks for H.264 at ≥720p and ≥15 fps with a keyframe at least every
2 s. The SDP and the codec headers only say what the camera claims, and the keyframe interval
is not in them at all, so `probe` reads a few seconds of real packets and measures.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from media import argv
from media.redact import redact

DEFAULT_READ_SECONDS = 5.0


@dataclass(frozen=True)
class ProbeResult:
    """What a probe measured. Fields are None when they could not be measured."""

    url: str  # redacted
    reachable: bool
    error: str | None = None
    codec: str | None = None
    profile: str | None = None
    pix_fmt: str | None = None
    bit_depth: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    # Longest gap between two consecutive keyframes seen, in seconds.
    keyframe_interval: float | None = None
    # With fewer than two keyframes in the sample: the gap is at least this long.
    keyframe_interval_at_least: float | None = None
    keyframes_seen: int = 0
    sampled_seconds: float = 0.0
    probed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def video_mode(self) -> argv.VideoMode:
        """Copy or transcode when streaming this camera to HLS."""
        return argv.choose_video_mode(self.codec, self.pix_fmt)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the camera row's ``probe`` column."""
        data = asdict(self)
        data["probed_at"] = self.probed_at.isoformat()
        return data


@dataclass(frozen=True)
class CommissioningRules:
    """The automatic checklist rules; field names match the checklist item parameters."""

    codec: str = "h264"
    min_height: int = 720
    min_fps: float = 15.0
    max_keyframe_interval: float = 2.0


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    measured: str
    expected: str


def probe(
    url: str,
    *,
    read_seconds: float = DEFAULT_READ_SECONDS,
    timeout: float | None = None,
    fontfile: str | None = None,
    ffprobe_bin: str = argv.FFPROBE,
    ffmpeg_bin: str = argv.FFMPEG,
) -> ProbeResult:
    """Read ``read_seconds`` of the camera's video and measure it; never raises for a camera
    that is down or sends garbage (that is a result: unreachable, with the redacted error).

    ``timeout`` bounds the whole run (default: the read plus 10 s for connecting), so a camera
    that accepts the connection and then says nothing cannot hold a technician's request."""
    limit = timeout if timeout is not None else read_seconds + 10.0
    if argv.is_simulated(url):
        return _probe_simulated(url, read_seconds, limit, fontfile, ffprobe_bin, ffmpeg_bin)
    return _run_ffprobe(
        url, argv.ffprobe_argv(url, read_seconds=read_seconds, ffprobe_bin=ffprobe_bin), limit
    )


def _probe_simulated(
    url: str,
    seconds: float,
    limit: float,
    fontfile: str | None,
    ffprobe_bin: str,
    ffmpeg_bin: str,
) -> ProbeResult:
    """The simulated camera is measured like a real one, from a clip of its encoded output."""
    with tempfile.TemporaryDirectory(prefix="bk-probe-") as tmp:
        clip = Path(tmp) / "clip.ts"
        try:
            made = subprocess.run(
                argv.simulated_clip_argv(
                    url, clip, seconds=seconds, fontfile=fontfile, ffmpeg_bin=ffmpeg_bin
                ),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ProbeResult(url=redact(url), reachable=False, error="timed out")
        if made.returncode != 0:
            return ProbeResult(url=redact(url), reachable=False, error=_last_line(made.stderr))
        result = _run_ffprobe(
            str(clip), argv.ffprobe_argv(clip, read_seconds=seconds, ffprobe_bin=ffprobe_bin), limit
        )
        return ProbeResult(**{**asdict(result), "url": redact(url)})


def _run_ffprobe(url: str, args: list[str], limit: float) -> ProbeResult:
    try:
        done = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(url=redact(url), reachable=False, error=f"no answer within {limit:g} s")
    if done.returncode != 0:
        return ProbeResult(url=redact(url), reachable=False, error=_last_line(done.stderr))
    try:
        report = json.loads(done.stdout or b"{}")
    except json.JSONDecodeError:
        return ProbeResult(url=redact(url), reachable=False, error="unreadable ffprobe output")
    return parse_report(url, report)


def parse_report(url: str, report: dict[str, Any]) -> ProbeResult:
    """Turn ffprobe's JSON (streams + packets of the first video stream) into a result."""
    streams = report.get("streams") or []
    if not streams:
        return ProbeResult(url=redact(url), reachable=True, error="no video stream")
    stream = streams[0]
    packets = report.get("packets") or []
    stamped = _fill_missing_times(packets)
    times = sorted(t for t, _ in stamped)
    key_times = sorted(t for t, flags in stamped if "K" in flags)
    sampled = times[-1] - times[0] if len(times) > 1 else 0.0
    interval = at_least = None
    if len(key_times) > 1:
        interval = round(max(b - a for a, b in zip(key_times, key_times[1:], strict=False)), 3)
    elif times:
        # One keyframe (or none) in the sample: the real interval is longer than what we saw.
        at_least = round(times[-1] - (key_times[0] if key_times else times[0]), 3)
    fps = (len(times) - 1) / sampled if sampled >= 0.5 else _rate(stream.get("r_frame_rate"))
    return ProbeResult(
        url=redact(url),
        reachable=True,
        codec=stream.get("codec_name"),
        profile=stream.get("profile"),
        pix_fmt=stream.get("pix_fmt"),
        bit_depth=_bit_depth(stream),
        width=stream.get("width"),
        height=stream.get("height"),
        fps=round(fps, 2) if fps else None,
        keyframe_interval=interval,
        keyframe_interval_at_least=at_least,
        keyframes_seen=len(key_times),
        sampled_seconds=round(sampled, 3),
    )


def evaluate(result: ProbeResult, rules: CommissioningRules | None = None) -> list[RuleResult]:
    """Pass/fail per automatic checklist rule, with what was measured and what was expected."""
    rules = rules or CommissioningRules()
    out = [
        RuleResult(
            "reachable",
            result.reachable,
            "reachable" if result.reachable else f"unreachable: {result.error}",
            "stream answers",
        )
    ]
    codec = (result.codec or "").lower()
    out.append(
        RuleResult(
            "codec",
            codec == rules.codec.lower(),
            result.codec or "not measured",
            rules.codec.upper().replace("H264", "H.264"),
        )
    )
    if result.width and result.height:
        # The shorter side, so a camera mounted in portrait (720x1280) still counts as 720p.
        short_side = min(result.width, result.height)
        out.append(
            RuleResult(
                "resolution",
                short_side >= rules.min_height,
                f"{result.width}x{result.height}",
                f"≥{rules.min_height}p",
            )
        )
    else:
        out.append(RuleResult("resolution", False, "not measured", f"≥{rules.min_height}p"))
    out.append(
        RuleResult(
            "frame_rate",
            result.fps is not None and result.fps >= rules.min_fps,
            f"{result.fps:g} fps" if result.fps is not None else "not measured",
            f"≥{rules.min_fps:g} fps",
        )
    )
    expected = f"≤{rules.max_keyframe_interval:g} s"
    if result.keyframe_interval is not None:
        out.append(
            RuleResult(
                "keyframe_interval",
                result.keyframe_interval <= rules.max_keyframe_interval,
                f"{result.keyframe_interval:g} s",
                expected,
            )
        )
    elif result.keyframe_interval_at_least is not None:
        # Fewer than two keyframes in the sample: only a lower bound, never a pass.
        bound = result.keyframe_interval_at_least
        measured = (
            f">{bound:g} s"
            if bound > rules.max_keyframe_interval
            else f"not measured (fewer than two keyframes in {result.sampled_seconds:g} s)"
        )
        out.append(RuleResult("keyframe_interval", False, measured, expected))
    else:
        out.append(RuleResult("keyframe_interval", False, "not measured", expected))
    return out


def _fill_missing_times(packets: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(time, flags) per packet. Over RTSP the very first packet, a keyframe, has no
    timestamp; leading packets are placed one frame apart before the first stamped one, and
    a later gap takes its predecessor's time, so that keyframe still counts."""
    times = [_packet_time(p) for p in packets]
    known = sorted(t for t in times if t is not None)
    if not known:
        return []
    step = (known[-1] - known[0]) / (len(known) - 1) if len(known) > 1 else 0.0
    first = next(i for i, t in enumerate(times) if t is not None)
    previous = known[0]
    stamped = []
    for i, (packet, t) in enumerate(zip(packets, times, strict=True)):
        if t is None:
            t = times[first] - (first - i) * step if i < first else previous  # type: ignore[operator]
        previous = t
        stamped.append((t, packet.get("flags") or ""))
    return stamped


def _packet_time(packet: dict[str, Any]) -> float | None:
    for key in ("pts_time", "dts_time"):
        value = packet.get(key)
        if value not in (None, "N/A"):
            return float(value)
    return None


def _rate(text: str | None) -> float | None:
    if not text or "/" not in text:
        return None
    num, den = (float(x) for x in text.split("/", 1))
    return num / den if den else None


def _bit_depth(stream: dict[str, Any]) -> int | None:
    raw = stream.get("bits_per_raw_sample")
    if raw not in (None, "N/A", "0"):
        return int(raw)
    pix_fmt = stream.get("pix_fmt") or ""
    if match := re.search(r"p(\d{2})(le|be)$", pix_fmt):
        return int(match.group(1))
    return 8 if pix_fmt else None


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return redact(lines[-1].strip()) if lines else "ffprobe failed"
