"""Helpers for the media tests: start and abuse the real test camera (tests/fakecam.py).

The camera runs under the system Python, which has GStreamer's bindings (``python3-gi``); the
project venv does not. If they are missing, starting a camera fails loudly with the camera's
own error output: CI installs them, and a silently skipped media test proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SYSTEM_PYTHON = "/usr/bin/python3"
FAKECAM = Path(__file__).with_name("fakecam.py")
READY_TIMEOUT = 10.0
# gst-rtsp-server 1.22 can crash when many clients connect in the same instant; starting
# cameras (and so their first clients) a little apart avoids it.
STAGGER_SECONDS = 0.15

_READY_RE = re.compile(r"^READY (rtsp://\S+)")


class FakeCamera:
    """One test camera process. ``url`` stays the same across ``restart`` (same port)."""

    def __init__(self, port: int | None = None, **options: object) -> None:
        self.port = port or 0
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeCamera:
        """Launch and wait for READY; on a fixed port, retry briefly while it is still held."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            self._log.seek(0)
            self._log.truncate()
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(FAKECAM), "--port", str(self.port), *self._option_args()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,
            )
            url = self._wait_ready(deadline)
            if url is not None:
                self._url = url
                self.port = urlsplit(url).port or self.port
                return self
            self._reap()
            if time.monotonic() > deadline:
                self._log.seek(0)
                raise RuntimeError(
                    "fake camera did not become ready:\n"
                    + self._log.read().decode("utf-8", "replace")
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Camera switched off cleanly (SIGTERM)."""
        self._signal(signal.SIGTERM)
        self._reap()

    def kill(self) -> None:
        """Camera loses power (SIGKILL)."""
        self._signal(signal.SIGKILL)
        self._reap()

    def pause(self) -> None:
        """Camera hangs: connections are accepted by the kernel, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self) -> FakeCamera:
        """Camera comes back on the same address."""
        if self.running:
            self.stop()
        return self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGKILL)
        self._reap()
        self._log.close()

    # -- queries -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("camera not started")
        return self._url

    def url_with_credentials(self, user: str, password: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))

    # -- internals ---------------------------------------------------------------

    def _option_args(self) -> list[str]:
        args: list[str] = []
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        return args

    def _wait_ready(self, deadline: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return None  # exited: port taken, or GStreamer missing
                buffer += chunk
                for line in buffer.decode("utf-8", "replace").splitlines():
                    if match := _READY_RE.match(line):
                        return match.group(1)
        return None

    def _signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def _reap(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


CameraFactory = Callable[..., FakeCamera]


@contextlib.contextmanager
def fakecam_factory() -> Iterator[CameraFactory]:
    """``start_fakecam(port=None, **options)`` for one test; every camera is killed after it.

    Options are fakecam.py's flags: ``width=640, gop=100, pattern="black", frozen=True,
    bframes=True, auth="user:pass"``."""
    cameras: list[FakeCamera] = []
    last_start = [0.0]

    def start_fakecam(port: int | None = None, **options: object) -> FakeCamera:
        wait = last_start[0] + STAGGER_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        camera = FakeCamera(port, **options)
        cameras.append(camera)
        camera.start()
        last_start[0] = time.monotonic()
        return camera

    try:
        yield start_fakecam
    finally:
        for camera in cameras:
            camera.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (e.g. a unique HLS dir)."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def probe_segment(segment: Path) -> dict[str, str]:
    """What ffprobe says about a segment's video stream: codec_name, profile, pix_fmt,
    has_b_frames, and nb_read_frames (every frame decoded and counted)."""
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,pix_fmt,has_b_frames,nb_read_frames",
            "-of",
            "default=nw=1",
            str(segment),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def child_pids(parent: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
