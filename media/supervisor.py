"""The per-camera ffmpeg supervisor: RTSP (or the simulated camera) → HLS, on demand.

One ffmpeg per camera, never per viewer. Each running camera has a worker thread that owns its
process from start to reaping (so there can never be two for one camera) and doubles as that
camera's watchdog, on a ``wait(tick)`` loop like Frigate's: it notices the process exiting,
the first segment (online), segments that stop coming (stalled), and the end of demand.

Failure handling follows DESIGN.md "Media rules" and what was measured on ffmpeg 5.1:

- any exit is a failure: ffmpeg exits with code 0 when a camera drops;
- restart with backoff 1 s, doubling to a 60 s cap, forever, also when the very first
  connection fails; the backoff resets once a stream has been healthy for a while; while a
  camera's port refuses connections the wait is cut short the moment it accepts again, so a
  camera that comes back is streaming within seconds even late in a long backoff;
- a newest segment older than 3× the segment length means stalled: a hung camera keeps ffmpeg
  blocked ≈20 s even with the socket timeout, so the process group is killed and restarted;
- stop = SIGTERM to the process group, a few seconds' grace, then SIGKILL (a hung ffmpeg
  ignores one SIGTERM).

Status changes only are reported, through ``on_status(camera_id, status, info)`` called from
worker threads; the app's runner writes them to the camera row and publishes events. This
module imports nothing from ``app/``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from media import argv
from media.redact import redact

log = logging.getLogger(__name__)

_CAMERA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EXTINF_RE = re.compile(rb"^#EXTINF:([0-9.]+)", re.MULTILINE)
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
_HOUR = 3600.0


class Status(enum.StrEnum):
    """What is reported; the same words as the app's CameraStatus. Not pulling because nobody
    needs the stream ("idle") is not a status change and is not reported."""

    ONLINE = "online"
    OFFLINE = "offline"
    STALLED = "stalled"


@dataclass(frozen=True)
class CameraSource:
    """One camera as the supervisor needs it: plain data from the app.

    ``url`` may carry credentials; they never leave this object unredacted."""

    camera_id: str
    url: str
    video: argv.VideoMode = "copy"
    audio: bool = False

    def __post_init__(self) -> None:
        # The app's ids are integers; the supervisor keys cameras (and folders) by text.
        object.__setattr__(self, "camera_id", str(self.camera_id))

    def __repr__(self) -> str:
        return (
            f"CameraSource(camera_id={self.camera_id!r}, url={redact(self.url)!r}, "
            f"video={self.video!r}, audio={self.audio!r})"
        )


@dataclass(frozen=True)
class StatusInfo:
    """Sent with every status change."""

    reason: str
    last_frame_at: datetime | None
    reconnects_last_hour: int
    stderr_tail: tuple[str, ...]
    exit_code: int | None = None


StatusCallback = Callable[[str, Status, StatusInfo], None]


@dataclass(frozen=True)
class CameraState:
    """A camera as the supervisor sees it right now (for dashboards, health and tests)."""

    camera_id: str
    status: Status | None
    # Being supervised: an ffmpeg is running or a restart is pending. Not running = idle.
    running: bool
    pid: int | None  # of the live ffmpeg, if there is one
    last_frame_at: datetime | None
    reconnects_last_hour: int
    stderr_tail: tuple[str, ...]
    viewers: int
    warm_until: datetime | None
    reasons: tuple[str, ...]


@dataclass(eq=False)
class _Camera:
    source: CameraSource
    wake: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None
    proc: subprocess.Popen[bytes] | None = None
    # Demand, in monotonic seconds.
    leases: dict[str, float] = field(default_factory=dict)
    warm_until: float = 0.0
    touched_at: float = float("-inf")
    reasons: dict[str, str] = field(default_factory=dict)
    stop_requested: bool = False
    restart_requested: bool = False
    # Health.
    status: Status | None = None
    last_frame_at: datetime | None = None
    online_since: float | None = None
    backoff: float = 0.0
    reconnects: deque[float] = field(default_factory=deque)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=100))


class Supervisor:
    """Runs and watches one ffmpeg per camera that someone needs.

    Demand comes from three places, and a camera runs while any of them holds, plus
    ``idle_timeout`` seconds after the last one ends:

    - ``watch(source, viewer)``: a viewer's lease, renewed by calling it again, ended by
      ``release`` or by expiring after ``ttl`` seconds;
    - ``keep_warm(source, until)``: meal windows of rooms shown to parents, patrols, snapshot
      schedules — the first frame then comes from a stream that is already running;
    - ``ensure_running(source, reason)``: a one-off need (a snapshot, a check).

    Thread-safe; every method may be called from any thread.
    """

    def __init__(
        self,
        hls_root: str | Path,
        *,
        on_status: StatusCallback | None = None,
        hls: argv.HlsSettings = argv.HlsSettings(),  # noqa: B008 - frozen dataclass
        transcode: argv.TranscodeSettings = argv.TranscodeSettings(),  # noqa: B008
        idle_timeout: float = 30.0,
        lease_ttl: float = 60.0,
        backoff_initial: float = 1.0,
        backoff_cap: float = 60.0,
        healthy_after: float = 30.0,
        stall_factor: float = 3.0,
        start_timeout: float = 20.0,
        stop_grace: float = 5.0,
        tick: float = 1.0,
        recheck_refused_port: bool = True,
        fontfile: str | None | bool = True,
        ffmpeg_bin: str = argv.FFMPEG,
    ) -> None:
        """``fontfile``: True finds an installed font for the simulated camera's clock, a path
        uses that one, None draws no text. ``start_timeout`` bounds how long a process may run
        without producing its first segment before it counts as a failed connection."""
        self.hls_root = Path(hls_root).resolve()
        self.on_status = on_status
        self.hls = hls
        self.transcode = transcode
        self.idle_timeout = idle_timeout
        self.lease_ttl = lease_ttl
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.healthy_after = healthy_after
        self.stall_factor = stall_factor
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.tick = tick
        self.recheck_refused_port = recheck_refused_port
        self.fontfile = argv.find_font() if fontfile is True else (fontfile or None)
        self.ffmpeg_bin = ffmpeg_bin
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._cameras: dict[str, _Camera] = {}
        self._closing = False

    # ----------------------------------------------------------------- demand

    def watch(self, source: CameraSource, viewer: str, ttl: float | None = None) -> datetime:
        """Register or renew a viewer's lease; start the stream if it is not running.
        Returns when the lease expires unless renewed."""
        ttl = self.lease_ttl if ttl is None else ttl
        with self._lock:
            cam = self._camera(source)
            cam.leases[viewer] = time.monotonic() + ttl
            self._start_locked(cam)
        return datetime.now(UTC) + timedelta(seconds=ttl)

    def release(self, camera_id: str, viewer: str) -> None:
        """A viewer left: the idle countdown starts now if it was the last one."""
        with self._lock:
            cam = self._cameras.get(str(camera_id))
            if cam is not None and cam.leases.pop(viewer, None) is not None:
                cam.touched_at = max(cam.touched_at, time.monotonic())
                cam.wake.set()

    def withhold(self, camera_id: str, keep: Collection[str] = ()) -> None:
        """Take back every demand on the camera but the viewer leases named in ``keep``:
        other leases, the warm period and the idle countdown. A stream no kept lease holds
        stops now (its folder removed), without waiting as ``stop`` does — e.g. a centre
        whose live view was suspended while staff may go on watching."""
        with self._lock:
            cam = self._cameras.get(str(camera_id))
            if cam is None:
                return
            for viewer in [v for v in cam.leases if v not in keep]:
                del cam.leases[viewer]
            cam.warm_until = 0.0
            cam.touched_at = float("-inf")
            cam.reasons.pop("warm", None)
            cam.wake.set()

    def keep_warm(self, source: CameraSource, until: datetime, reason: str) -> None:
        """Keep the stream running until ``until`` (tz-aware), e.g. a meal window or patrol."""
        remaining = (until - datetime.now(UTC)).total_seconds()
        with self._lock:
            cam = self._camera(source)
            cam.warm_until = max(cam.warm_until, time.monotonic() + remaining)
            cam.reasons["warm"] = reason
            self._start_locked(cam)

    def ensure_running(self, source: CameraSource, reason: str, for_seconds: float = 0.0) -> None:
        """Start the stream now (if it is not running) and keep it ``for_seconds`` plus
        ``idle_timeout`` seconds, e.g. for a snapshot or a probe of the running stream."""
        with self._lock:
            cam = self._camera(source)
            cam.touched_at = max(cam.touched_at, time.monotonic() + for_seconds)
            cam.reasons["ensure"] = reason
            self._start_locked(cam)

    def stop(self, camera_id: str, *, timeout: float | None = None) -> bool:
        """Drop every demand and stop the camera's stream now; waits until its ffmpeg is gone
        and its folder cleaned. Returns False if that took longer than ``timeout``."""
        timeout = self.stop_grace + 5.0 if timeout is None else timeout
        with self._lock:
            cam = self._cameras.get(str(camera_id))
            if cam is None:
                return True
            cam.leases.clear()
            cam.warm_until = 0.0
            cam.touched_at = float("-inf")
            cam.stop_requested = True
            cam.wake.set()
            stopped = self._changed.wait_for(lambda: cam.worker is None, timeout)
            cam.stop_requested = False
            if stopped and self._wanted_locked(cam, time.monotonic()):
                self._start_locked(cam)  # a viewer asked while we were stopping
            return stopped

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every stream and wait for the workers; leaves no ffmpeg behind. Idempotent."""
        timeout = self.stop_grace + 5.0 if timeout is None else timeout
        with self._lock:
            self._closing = True
            workers = [c.worker for c in self._cameras.values() if c.worker is not None]
            for cam in self._cameras.values():
                cam.wake.set()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = [c.proc for c in self._cameras.values() if c.proc is not None]
        for proc in stuck:  # a worker that did not finish in time: do not leave its ffmpeg
            _kill_group(proc)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---------------------------------------------------------------- queries

    def hls_dir(self, camera_id: str) -> Path:
        """The camera's output folder. Camera ids become path names, so they are checked."""
        camera_id = str(camera_id)
        if not _CAMERA_ID_RE.match(camera_id):
            raise ValueError(f"camera id not usable as a folder name: {camera_id!r}")
        return self.hls_root / camera_id

    def playlist(self, camera_id: str) -> Path:
        return self.hls_dir(camera_id) / argv.PLAYLIST_NAME

    def newest_segment(self, camera_id: str) -> Path | None:
        """The newest finished segment, for a snapshot from the running stream."""
        entry = _newest_segment(self.hls_dir(camera_id))
        return Path(entry.path) if entry is not None else None

    def state(self, camera_id: str) -> CameraState | None:
        with self._lock:
            cam = self._cameras.get(str(camera_id))
            if cam is None:
                return None
            now = time.monotonic()
            proc = cam.proc
            warm_left = cam.warm_until - now
            return CameraState(
                camera_id=cam.source.camera_id,
                status=cam.status,
                running=cam.worker is not None,
                pid=proc.pid if proc is not None and proc.poll() is None else None,
                last_frame_at=cam.last_frame_at,
                reconnects_last_hour=self._reconnects_locked(cam, now),
                stderr_tail=tuple(cam.stderr),
                viewers=sum(1 for expiry in cam.leases.values() if expiry > now),
                warm_until=datetime.now(UTC) + timedelta(seconds=warm_left)
                if warm_left > 0
                else None,
                reasons=tuple(cam.reasons.values()),
            )

    def states(self) -> list[CameraState]:
        with self._lock:
            ids = list(self._cameras)
        return [s for camera_id in ids if (s := self.state(camera_id)) is not None]

    def wait_for_status(self, camera_id: str, status: Status, timeout: float) -> bool:
        """Block until the camera's reported status is ``status`` (e.g. a watch request that
        wants to hand out a URL that plays at once)."""
        with self._lock:
            return self._changed.wait_for(
                lambda: (c := self._cameras.get(str(camera_id))) is not None and c.status == status,
                timeout,
            )

    # --------------------------------------------------------------- internals

    def _camera(self, source: CameraSource) -> _Camera:
        if self._closing:
            raise RuntimeError("the media supervisor is shut down")
        self.hls_dir(source.camera_id)  # validates the id before anything is kept
        cam = self._cameras.get(source.camera_id)
        if cam is None:
            cam = self._cameras[source.camera_id] = _Camera(source=source)
        elif cam.source != source:
            # New URL or mode from the app: the running process is replaced at once.
            cam.source = source
            cam.restart_requested = True
            cam.wake.set()
        return cam

    def _start_locked(self, cam: _Camera) -> None:
        if cam.worker is not None:
            cam.wake.set()
            return
        cam.worker = threading.Thread(
            target=self._worker,
            args=(cam,),
            name=f"media-{cam.source.camera_id}",
            daemon=True,
        )
        cam.worker.start()

    def _wanted_locked(self, cam: _Camera, now: float) -> bool:
        if self._closing or cam.stop_requested:
            return False
        for viewer, expiry in list(cam.leases.items()):
            if expiry <= now:  # an expired lease counts as a viewer who left then
                del cam.leases[viewer]
                cam.touched_at = max(cam.touched_at, expiry)
        if cam.leases:
            return True
        return now < max(cam.warm_until, cam.touched_at) + self.idle_timeout

    def _reconnects_locked(self, cam: _Camera, now: float) -> int:
        while cam.reconnects and cam.reconnects[0] < now - _HOUR:
            cam.reconnects.popleft()
        return len(cam.reconnects)

    def _worker(self, cam: _Camera) -> None:
        """Start, watch, restart with backoff; exit when nobody needs the camera any more."""
        delay = 0.0
        try:
            while True:
                if delay > 0:
                    self._backoff_wait(cam, delay)
                with self._lock:
                    if not self._wanted_locked(cam, time.monotonic()):
                        cam.worker = None
                        cam.backoff = 0.0  # the next demand starts afresh
                        self._changed.notify_all()
                        return
                    cam.restart_requested = False
                    source = cam.source
                delay = self._run_once(cam, source)
        except Exception:
            log.exception("media worker for camera %s failed", cam.source.camera_id)
            with self._lock:
                cam.worker = None
                self._changed.notify_all()

    def _run_once(self, cam: _Camera, source: CameraSource) -> float:
        """One ffmpeg process from start to reaping. Returns the delay before the next start
        (0 after a planned stop)."""
        out = self.hls_dir(source.camera_id)
        _clean(out)  # segments of an earlier process would look like a live stream
        out.mkdir(parents=True, exist_ok=True)
        args = argv.hls_argv(
            source.url,
            out,
            video=source.video,
            audio=source.audio,
            hls=self.hls,
            transcode=self.transcode,
            fontfile=self.fontfile,
            ffmpeg_bin=self.ffmpeg_bin,
        )
        try:
            proc = subprocess.Popen(
                args,
                start_new_session=True,  # its own process group: stop and kill reach all of it
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:  # ffmpeg missing, or no processes/files left on the node
            return self._failed(cam, Status.OFFLINE, f"cannot start ffmpeg: {exc}", None, False)
        reader = threading.Thread(
            target=self._read_stderr,
            args=(cam, proc),
            name=f"media-{source.camera_id}-stderr",
            daemon=True,
        )
        reader.start()
        with self._lock:
            cam.proc = proc
        log.debug("camera %s: ffmpeg %d started", source.camera_id, proc.pid)
        outcome, reason = "exited", "supervisor error"
        try:
            outcome, reason = self._watch(cam, proc, out)
        finally:
            if outcome == "planned":
                _terminate_group(proc, self.stop_grace)
            else:
                _kill_group(proc)  # exited already, stalled, never started, or our error
            reader.join()
            with self._lock:
                cam.proc = None
                healthy = (
                    cam.online_since is not None
                    and time.monotonic() - cam.online_since >= self.healthy_after
                )
                cam.online_since = None
        if outcome == "planned":
            _clean(out)
            return 0.0
        status = Status.STALLED if outcome == "stalled" else Status.OFFLINE
        exit_code = proc.returncode if outcome == "exited" else None
        return self._failed(cam, status, reason, exit_code, healthy)

    def backoff_schedule(self, failures: int) -> list[float]:
        """The waits before the restarts that follow ``failures`` failures in a row (no healthy
        run between them): what ``_failed`` computes, without waiting for it."""
        delays, backoff = [], 0.0
        for _ in range(failures):
            delay, backoff = self._next_backoff(backoff, healthy=False)
            delays.append(delay)
        return delays

    def _next_backoff(self, backoff: float, *, healthy: bool) -> tuple[float, float]:
        """(this wait, the next one): from ``backoff_initial`` after a fresh start or a healthy
        run, doubling up to ``backoff_cap``."""
        if healthy or backoff == 0.0:
            backoff = self.backoff_initial
        return backoff, min(backoff * 2, self.backoff_cap)

    def _failed(
        self, cam: _Camera, status: Status, reason: str, exit_code: int | None, healthy: bool
    ) -> float:
        """Count the reconnect, report, and return the backoff before the next attempt."""
        with self._lock:
            delay, cam.backoff = self._next_backoff(cam.backoff, healthy=healthy)
            cam.reconnects.append(time.monotonic())
        self._report(cam, status, reason, exit_code=exit_code)
        log.info("camera %s: restarting in %.1f s", cam.source.camera_id, delay)
        return delay

    def _watch(self, cam: _Camera, proc: subprocess.Popen[bytes], out: Path) -> tuple[str, str]:
        """The watchdog loop for one process. Returns (outcome, reason) with outcome one of
        planned, exited, stalled, no_start."""
        started = last_progress = time.monotonic()
        newest_name: str | None = None
        playlist = out / argv.PLAYLIST_NAME
        stall_after = self.stall_factor * self.hls.segment_seconds
        while True:
            # Poll quickly until the first segment (that is the user's start-up wait), then on
            # the tick; the stderr reader wakes us the moment the process exits.
            cam.wake.wait(0.1 if cam.online_since is None else self.tick)
            cam.wake.clear()
            if proc.poll() is not None:
                return "exited", f"ffmpeg exited with code {proc.returncode}"
            now = time.monotonic()
            with self._lock:
                if cam.restart_requested or not self._wanted_locked(cam, now):
                    return "planned", "stopped"
            entry = _newest_segment(out)
            if entry is not None and cam.online_since is None and not playlist.exists():
                entry = None  # ffmpeg renames the segment first, then writes the playlist
            if entry is not None and entry.name != newest_name:
                newest_name = entry.name
                last_progress = now
                with contextlib.suppress(OSError):
                    frame_at = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                    with self._lock:
                        cam.last_frame_at = frame_at
                stall_after = self.stall_factor * max(
                    self.hls.segment_seconds, _typical_segment_seconds(out)
                )
                if cam.online_since is None:
                    with self._lock:
                        cam.online_since = now
                    self._report(cam, Status.ONLINE, "segments are being written")
            elif cam.online_since is not None and now - last_progress > stall_after:
                return "stalled", f"no new segment for {now - last_progress:.1f} s"
            elif cam.online_since is None and now - started > self.start_timeout:
                return "no_start", f"no segment within {self.start_timeout:g} s"

    def _backoff_wait(self, cam: _Camera, delay: float) -> None:
        """Wait before a restart; returns early when demand ends, on shutdown, or when a
        camera whose port was refusing connections starts accepting them again."""
        deadline = time.monotonic() + delay
        address = _tcp_address(cam.source.url) if self.recheck_refused_port else None
        refused = address is not None and not _port_open(address)
        while (remaining := deadline - time.monotonic()) > 0:
            if cam.wake.wait(min(remaining, 1.0) if refused else remaining):
                cam.wake.clear()
                with self._lock:
                    if not self._wanted_locked(cam, time.monotonic()) or cam.restart_requested:
                        return
            if refused and address is not None and _port_open(address):
                log.info("camera %s: port accepts connections again", cam.source.camera_id)
                return

    def _read_stderr(self, cam: _Camera, proc: subprocess.Popen[bytes]) -> None:
        """Keep ffmpeg's last lines, credentials stripped; wake the watchdog at EOF (exit)."""
        assert proc.stderr is not None
        with proc.stderr:
            for raw in iter(proc.stderr.readline, b""):
                line = redact(raw.decode("utf-8", "replace").rstrip())
                if not line:
                    continue
                with self._lock:
                    cam.stderr.append(line)
                log.debug("camera %s ffmpeg: %s", cam.source.camera_id, line)
        cam.wake.set()

    def _report(
        self, cam: _Camera, status: Status, reason: str, exit_code: int | None = None
    ) -> None:
        """Publish a status change (and nothing when the status is unchanged)."""
        with self._lock:
            if cam.status == status:
                return
            cam.status = status
            info = StatusInfo(
                reason=redact(reason),
                last_frame_at=cam.last_frame_at,
                reconnects_last_hour=self._reconnects_locked(cam, time.monotonic()),
                stderr_tail=tuple(cam.stderr)[-20:],
                exit_code=exit_code,
            )
            self._changed.notify_all()
        camera_id = cam.source.camera_id
        log.log(
            logging.INFO if status == Status.ONLINE else logging.WARNING,
            "camera %s %s: %s",
            camera_id,
            status,
            info.reason,
        )
        if self.on_status is not None:
            try:
                self.on_status(camera_id, status, info)
            except Exception:
                log.exception("on_status callback failed for camera %s", camera_id)


def kill_stray_ffmpeg(hls_root: str | Path) -> int:
    """Kill ffmpeg processes writing under ``hls_root`` left by a supervisor that died without
    shutting down (its children live in their own sessions and would outlive it). Call once
    at start-up, before the supervisor runs. Linux only (reads /proc). Returns how many."""
    marker = str(Path(hls_root).resolve()).encode() + b"/"
    killed = 0
    for pid, cmdline in _processes():
        if pid == os.getpid() or marker not in cmdline:
            continue
        if Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name != "ffmpeg":
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def _processes() -> Iterator[tuple[int, bytes]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry.name), (entry / "cmdline").read_bytes()


def _terminate_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the group, wait, then SIGKILL: ffmpeg finishes its segment on SIGTERM, but a
    hung one ignores it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Only while the leader is unreaped: after that its pid (= the group id) may be reused.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _clean(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)


def _newest_segment(out: Path) -> os.DirEntry[str] | None:
    """The newest finished segment (temp_file: an unfinished one ends in .tmp)."""
    try:
        with os.scandir(out) as entries:
            segments = [e for e in entries if e.name.endswith(argv.SEGMENT_SUFFIX)]
    except OSError:
        return None
    # Names carry the media sequence number; it only grows within one process.
    return max(segments, key=lambda e: (len(e.name), e.name), default=None)


def _typical_segment_seconds(out: Path) -> float:
    """Median segment duration in the playlist: a camera with a 4 s GOP makes 4 s segments
    whatever hls_time says, and must not look stalled for it. The first entry is left out
    once there are others: a process's first segment runs up to twice as long."""
    try:
        playlist = (out / argv.PLAYLIST_NAME).read_bytes()
    except OSError:
        return 0.0
    durations = [float(x) for x in _EXTINF_RE.findall(playlist)]
    return statistics.median(durations[1:] or durations) if durations else 0.0


def _tcp_address(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        return parts.hostname, parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None


def _port_open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False
