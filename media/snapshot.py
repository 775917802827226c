"""Snapshots (抓拍) and the tamper checks made on them.

A snapshot is evidence in a rectification notice, so it comes back with its SHA-256 and the
time it was taken. It is cut from the newest finished HLS segment when the camera is already
streaming (≈0.1 s, no second connection to the camera) and pulled from the camera otherwise.

Tamper checks look at decoded pictures with ffmpeg filters: ``blackframe`` for a covered lens
or lights off; ``psnr`` between frames of one running stream taken seconds apart, from
different segments, for a frozen picture (``stillness``).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from media import argv
from media import hls as hls_folder
from media.redact import redact

DEFAULT_TIMEOUT = 10.0
# Share of dark pixels from which a picture counts as black. Not 1.0: a covered camera still
# draws its OSD (date, time, name), a few per cent of the picture.
BLACK_RATIO = 0.95
# Two decoded pictures closer than this are the same picture. Live cameras differ by sensor
# noise and a ticking clock (≈30–45 dB); a frozen encoder repeats its picture exactly (inf).
IDENTICAL_PSNR_DB = 50.0
# Frames compared by the frozen check: the oldest and newest of the span and some between.
STILLNESS_SAMPLES = 3


class SnapshotError(RuntimeError):
    """No picture could be taken; the message is safe to show (credentials stripped)."""


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    sha256: str
    taken_at: datetime
    source: Literal["segment", "pull"]


def take_snapshot(
    url: str,
    *,
    segment: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    fontfile: str | None = None,
    ffmpeg_bin: str = argv.FFMPEG,
) -> Snapshot:
    """One JPEG of the camera: from ``segment`` (the running stream's newest segment) when
    given, falling back to a short pull from ``url`` if that segment is gone or unreadable."""
    taken_at = datetime.now(UTC)
    if segment is not None:
        try:
            jpeg = _run_jpeg(
                argv.snapshot_from_segment_argv(segment, ffmpeg_bin=ffmpeg_bin), timeout
            )
            return Snapshot(jpeg, hashlib.sha256(jpeg).hexdigest(), taken_at, "segment")
        except SnapshotError:
            pass  # ffmpeg deleted it in between, or it was cut short: pull instead
    jpeg = _run_jpeg(
        argv.snapshot_from_source_argv(url, fontfile=fontfile, ffmpeg_bin=ffmpeg_bin), timeout
    )
    return Snapshot(jpeg, hashlib.sha256(jpeg).hexdigest(), datetime.now(UTC), "pull")


def black_ratio(jpeg: bytes, *, ffmpeg_bin: str = argv.FFMPEG) -> float:
    """Share (0–1) of the picture's pixels that are dark."""
    done = _run(argv.black_frame_argv(ffmpeg_bin=ffmpeg_bin), jpeg, DEFAULT_TIMEOUT)
    found = re.findall(rb"pblack:(\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SnapshotError(f"cannot measure picture: {_last_line(done.stderr)}")
    return int(found[-1]) / 100


def is_black(jpeg: bytes, *, min_ratio: float = BLACK_RATIO) -> bool:
    """Lens covered or lights off: nearly every pixel dark."""
    return black_ratio(jpeg) >= min_ratio


def psnr(first: bytes, second: bytes, *, ffmpeg_bin: str = argv.FFMPEG) -> float:
    """Peak signal-to-noise ratio between two pictures in dB (``inf`` when identical).
    Pictures of different sizes are not comparable: 0."""
    with tempfile.TemporaryDirectory(prefix="bk-psnr-") as tmp:
        a, b = Path(tmp) / "a.jpg", Path(tmp) / "b.jpg"
        a.write_bytes(first)
        b.write_bytes(second)
        done = _run(argv.psnr_argv(a, b, ffmpeg_bin=ffmpeg_bin), None, DEFAULT_TIMEOUT)
    found = re.findall(rb"average:(inf|[0-9.]+)", done.stderr)
    if done.returncode != 0 or not found:
        return 0.0
    return float(found[-1].decode())


def frames_identical(
    first: bytes, second: bytes, *, min_psnr_db: float = IDENTICAL_PSNR_DB
) -> bool:
    """The same picture, byte for byte or after decoding (re-encoding noise tolerated)."""
    if first == second:
        return True
    return psnr(first, second) >= min_psnr_db


def is_frozen(jpegs: Sequence[bytes], *, min_psnr_db: float = IDENTICAL_PSNR_DB) -> bool:
    """Snapshots taken apart in time all show the same picture while the stream is live.

    Needs at least two; the caller spaces them (a second or more) and knows the stream was
    delivering new segments meanwhile, which is what makes "identical" suspicious."""
    if len(jpegs) < 2:
        raise ValueError("a frozen check needs at least two snapshots")
    return all(
        frames_identical(a, b, min_psnr_db=min_psnr_db)
        for a, b in zip(jpegs, jpegs[1:], strict=False)
    )


@dataclass(frozen=True)
class Stillness:
    """Frames of one running stream compared over a span of time."""

    frozen: bool  # every compared frame is the same picture
    segments: tuple[str, ...]  # the segments whose first frames were compared, oldest first
    span_s: float  # seconds from the first compared frame to the last


def stillness(
    hls_dir: str | Path,
    *,
    min_span_s: float,
    samples: int = STILLNESS_SAMPLES,
    max_age_s: float | None = None,
    min_psnr_db: float = IDENTICAL_PSNR_DB,
    ffmpeg_bin: str = argv.FFMPEG,
) -> Stillness | None:
    """Is the picture of a running stream frozen? The first frames of ``samples`` different
    segments spanning at least ``min_span_s`` seconds, ending with the newest, are compared.

    None when there is no evidence either way: no stream is advancing in ``hls_dir`` (no
    fresh segment), it has not run ``min_span_s`` yet, or a segment went while being read.
    Frames cut from one segment are always the same picture, and a camera that stopped
    sending shows its last picture: neither says anything about a frozen picture, so both are
    left out by construction."""
    if samples < 2:
        raise ValueError("a frozen check compares at least two frames")
    segments = hls_folder.fresh_segments(hls_dir, max_age_s=max_age_s)
    if not segments:
        return None
    newest = segments[-1]
    # The most recent segment that starts at least min_span_s before the newest one.
    earlier = [s for s in segments[:-1] if newest.offset - s.offset >= min_span_s]
    if not earlier:
        return None
    window = segments[segments.index(earlier[-1]) :]
    count = min(samples, len(window))
    picked = [window[round(k * (len(window) - 1) / (count - 1))] for k in range(count)]
    frames: list[bytes] = []
    try:
        # Oldest and newest first: a live picture differs there, and the rest is not needed.
        for segment in (picked[0], picked[-1]):
            frames.append(_first_frame(segment.path, ffmpeg_bin))
        span = picked[-1].offset - picked[0].offset
        names = tuple(s.name for s in picked)
        if not frames_identical(frames[0], frames[1], min_psnr_db=min_psnr_db):
            return Stillness(False, names, span)
        middle = [_first_frame(s.path, ffmpeg_bin) for s in picked[1:-1]]
    except SnapshotError:
        return None
    ordered = [frames[0], *middle, frames[1]]
    return Stillness(is_frozen(ordered, min_psnr_db=min_psnr_db), names, span)


def _first_frame(segment: Path, ffmpeg_bin: str) -> bytes:
    return _run_jpeg(
        argv.snapshot_from_segment_argv(segment, ffmpeg_bin=ffmpeg_bin), DEFAULT_TIMEOUT
    )


T = TypeVar("T")


@dataclass
class _Call:
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None


class SingleFlight:
    """At most one snapshot per camera at a time: callers asking while one is being taken
    wait for it and share its result, instead of opening another connection to the camera
    (cheap cameras allow very few)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call] = {}

    def run(self, key: Hashable, fn: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if leader:
            try:
                call.result = fn()
            except BaseException as exc:
                call.error = exc
            finally:
                with self._lock:
                    del self._calls[key]
                call.done.set()
        else:
            call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]


def _run(args: list[str], stdin: bytes | None, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            args,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SnapshotError(f"ffmpeg gave no picture within {timeout:g} s") from exc


def _run_jpeg(args: list[str], timeout: float) -> bytes:
    done = _run(args, None, timeout)
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        raise SnapshotError(f"no picture: {_last_line(done.stderr)}")
    return done.stdout


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return redact(lines[-1].strip()) if lines else "ffmpeg failed"
