"""Drives the media supervisor (media/) from the app: demand from the database (viewers'
leases, meal windows, patrols) in, camera status out to the camera rows.

The embedded default runs it inside the web process (app.serve); production runs it on each
media node as `flask bk media --node NAME`, supervising that node's shard of cameras.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask

from app.extensions import db
from app.models import Camera, CameraStatus
from app.services import cameras as camera_service
from app.services import media_nodes
from app.services import watch as watch_service
from app.services.base import subscribe, unsubscribe
from media import argv as media_argv
from media import hls as media_hls
from media import probe as media_probe
from media import snapshot as media_snapshot
from media.supervisor import CameraSource, Status, StatusInfo, Supervisor, kill_stray_ffmpeg

log = logging.getLogger(__name__)


def probe_dict(url: str, read_seconds: float = media_probe.DEFAULT_READ_SECONDS) -> dict[str, Any]:
    """The commissioning probe as plain data (stored on the camera row)."""
    return media_probe.probe(url, read_seconds=read_seconds).as_dict()


class SnapshotTaker:
    """Snapshots as every process of the app takes them (web requests, Huey tasks, the media
    node): single-flight per camera in this process, and from the newest segment of the
    camera's running stream when one is being written under ``hls_root`` (≈0.1 s, no second
    connection to the camera — cheap cameras allow very few), else by a short pull."""

    def __init__(self, hls_root: str | Path) -> None:
        self.hls_root = Path(hls_root)
        self._flight = media_snapshot.SingleFlight()

    def __call__(self, camera_id: int, url: str) -> media_snapshot.Snapshot:
        def take() -> media_snapshot.Snapshot:
            segment = media_hls.newest_fresh_segment(self.hls_root / str(int(camera_id)))
            return media_snapshot.take_snapshot(url, segment=segment)

        return self._flight.run(int(camera_id), take)


def init_app(app: Flask) -> None:
    """What works without a running supervisor in this process: probing, and snapshots from
    whatever stream is running on this machine's HLS folder (or a short pull)."""
    app.extensions["bk_prober"] = partial(
        probe_dict, read_seconds=float(app.config["PROBE_READ_SECONDS"])
    )
    app.extensions["bk_snapshot"] = SnapshotTaker(app.config["HLS_ROOT"])
    app.extensions.setdefault("bk_media_state", "not_running")


class MediaRunner:
    def __init__(
        self,
        app: Flask,
        node: str | None = None,
        *,
        reconcile_every: float = 2.0,
        **supervisor_options: Any,
    ) -> None:
        self.app = app
        self.node = node
        self.reconcile_every = reconcile_every
        options = {
            "idle_timeout": float(app.config.get("MEDIA_IDLE_TIMEOUT_S", 30)),
            "lease_ttl": float(app.config["WATCH_LEASE_S"]),
            **supervisor_options,
        }
        self.supervisor = Supervisor(app.config["HLS_ROOT"], on_status=self._on_status, **options)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._urls: dict[int, str] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> MediaRunner:
        # ffmpeg runs in its own session and outlives a runner that crashed: clear leftovers.
        killed = kill_stray_ffmpeg(self.app.config["HLS_ROOT"])
        if killed:
            log.warning("stopped %d ffmpeg processes left by an earlier run", killed)
        subscribe(self._on_event)
        self._thread = threading.Thread(target=self._loop, name="media-runner", daemon=True)
        self._thread.start()
        self.app.extensions["bk_media"] = self
        self.app.extensions["bk_media_state"] = "running"
        return self

    def stop(self) -> None:
        unsubscribe(self._on_event)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.supervisor.shutdown()
        self.app.extensions["bk_media_state"] = "stopped"

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        # A viewer asked to watch: start now rather than at the next reconcile. A centre was
        # suspended: stop its parents' streams now (other processes' runners notice within
        # one reconcile period).
        if name in ("camera.watch_requested", "centre.suspended"):
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:  # keep supervising whatever one pass ran into
                log.exception("media reconcile failed")
            self._wake.wait(self.reconcile_every)
            self._wake.clear()

    # --- demand ----------------------------------------------------------------------------

    def reconcile(self, now: datetime | None = None) -> None:
        """Turn the database's demand into supervisor leases and warm periods. A named node
        first says it is alive and claims its share of the cameras no live node holds, and
        stops what it no longer holds (taken over while it was unreachable, or switched off)."""
        now = now or datetime.now(UTC)
        with self.app.app_context():
            if self.node:
                media_nodes.heartbeat(self.node, now)
                taken = media_nodes.claim(self.node, now)
                if taken:
                    log.info("media node %s took cameras %s", self.node, taken)
            cameras = camera_service.media_sources(self.node)
            sources = {
                camera.id: CameraSource(
                    camera_id=str(camera.id),
                    url=url,
                    video=video_mode(camera),
                )
                for camera, url in cameras
            }
            demands = watch_service.stream_demand(set(sources), now)
            withheld = watch_service.withheld_cameras(set(sources))
            self._record_reconnects([camera for camera, _ in cameras])
            db.session.remove()
        for state in self.supervisor.states():
            if state.running and int(state.camera_id) not in sources:
                log.info("camera %s is no longer this node's: stopping it", state.camera_id)
                self.supervisor.stop(state.camera_id)
        # A suspended centre's cameras keep only the leases still in demand (staff watching):
        # the parents' ended with the suspension and must not run on in the supervisor until
        # their ttl, nor a meal window's warm period until the window closes.
        for camera_id in withheld:
            keep = {d.key for d in demands if d.camera_id == camera_id and d.viewer}
            self.supervisor.withhold(str(camera_id), keep)
        for demand in demands:
            source = sources[demand.camera_id]
            if demand.viewer:
                ttl = (demand.until - now).total_seconds()
                if ttl > 0:
                    self.supervisor.watch(source, demand.key, ttl=ttl)
            else:
                self.supervisor.keep_warm(source, demand.until, demand.key)

    def _record_reconnects(self, cameras: list[Camera]) -> None:
        """Every ffmpeg restart of the last hour onto the camera rows, where the web's /metrics
        reads them: the status callback writes the count only when the status changes, and a
        camera that keeps failing to connect stays offline through every retry. Counts also
        fall back as restarts age out of the hour."""
        counted = {
            int(state.camera_id): state.reconnects_last_hour for state in self.supervisor.states()
        }
        changed = {
            camera.id: counted.get(camera.id, 0)
            for camera in cameras
            if camera.reconnects_last_hour != counted.get(camera.id, 0)
        }
        if changed:
            camera_service.record_reconnects(changed)

    # --- status ----------------------------------------------------------------------------

    def _on_status(self, camera_id: str, status: Status, info: StatusInfo) -> None:
        with self.app.app_context():
            try:
                camera_service.record_status(
                    int(camera_id),
                    CameraStatus(status.value),
                    last_frame_at=info.last_frame_at,
                    reconnects_last_hour=info.reconnects_last_hour,
                    reason=info.reason,
                )
            finally:
                db.session.remove()


def video_mode(camera: Camera) -> media_argv.VideoMode:
    """Copy 8-bit 4:2:0 H.264 as it comes; transcode anything the last probe says is something
    else (another codec, 4:2:2 or 4:4:4, 10-bit). A camera never probed is copied."""
    probe = camera.probe or {}
    mode = media_argv.choose_video_mode(probe.get("codec"), probe.get("pix_fmt"))
    if probe.get("bit_depth") not in (None, 8):  # a 10-bit stream whose pix_fmt was not read
        return "transcode"
    return mode


def run_forever(app: Flask, node: str | None) -> None:
    """`flask bk media`: supervise this node's cameras until SIGTERM/SIGINT."""
    import signal

    runner = MediaRunner(app, node).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    heartbeat = timedelta(seconds=30)
    log.info("media node %s supervising", node or "(all cameras)")
    while not stop.wait(heartbeat.total_seconds()):
        pass
    runner.stop()
