"""Reading a running stream's HLS folder from the outside: which segments the live playlist
lists, how long each is, and whether the newest is fresh (the stream is advancing).

Any process that can see the folder can use it — the supervisor's own, a web process or a
worker on the same disk — without asking the supervisor. ffmpeg writes segments under a
temporary name and the playlist to a temporary file, and renames each when complete
(``temp_file``), so what is listed here is always whole; a listed segment may still be deleted
a moment later, which callers survive (a snapshot then falls back to a pull).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from media import argv

# The newest segment is stale when older than this many typical segment lengths: the
# supervisor's stall watchdog uses the same factor, so a folder older than that is about to be
# cleaned up anyway.
STALE_FACTOR = 3.0


@dataclass(frozen=True)
class Segment:
    name: str
    path: Path
    duration: float
    # Start of the segment, in seconds after the start of the first listed one (the playlist
    # of one ffmpeg process is continuous: a restarted process starts with a clean folder).
    offset: float
    finished_at: float  # wall-clock (epoch) time the file was completed: its mtime


def listed_segments(hls_dir: str | Path) -> list[Segment]:
    """The segments the live playlist lists, oldest first, that are on disk."""
    folder = Path(hls_dir)
    try:
        text = (folder / argv.PLAYLIST_NAME).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    segments: list[Segment] = []
    offset = 0.0
    duration: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
            except ValueError:
                duration = None
        elif line and not line.startswith("#"):
            if duration is not None and "/" not in line:
                path = folder / line
                try:
                    finished_at = path.stat().st_mtime
                except OSError:
                    finished_at = None
                if finished_at is not None:
                    segments.append(Segment(line, path, duration, offset, finished_at))
                offset += duration
            duration = None
    return segments


def fresh_segments(
    hls_dir: str | Path, *, max_age_s: float | None = None, now: float | None = None
) -> list[Segment]:
    """``listed_segments`` when the newest one is fresh, else nothing: a stream that stopped
    advancing (camera hung, ffmpeg gone, nobody pulling) has no current picture on disk.

    ``max_age_s`` defaults to STALE_FACTOR typical segment lengths (at least 1 s each)."""
    segments = listed_segments(hls_dir)
    if not segments:
        return []
    if max_age_s is None:
        typical = statistics.median(s.duration for s in segments)
        max_age_s = STALE_FACTOR * max(1.0, typical)
    age = (time.time() if now is None else now) - segments[-1].finished_at
    return segments if age <= max_age_s else []


def newest_fresh_segment(hls_dir: str | Path, *, max_age_s: float | None = None) -> Path | None:
    """The newest finished segment of a stream that is advancing, for a snapshot."""
    segments = fresh_segments(hls_dir, max_age_s=max_age_s)
    return segments[-1].path if segments else None
