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
from typing import Any

from flask import Flask

from app.extensions import db
from app.models import Camera, CameraStatus
from app.services import cameras as camera_service
from app.services import media_nodes
from app.services import watch as watch_service
from app.services.base import subscribe, unsubscribe
from media import probe as media_probe
from media import snapshot as media_snapshot
from media.supervisor import CameraSource, Status, StatusInfo, Supervisor, kill_stray_ffmpeg

log = logging.getLogger(__name__)


def probe_dict(url: str, read_seconds: float = media_probe.DEFAULT_READ_SECONDS) -> dict[str, Any]:
    """The commissioning probe as plain data (stored on the camera row)."""
    return media_probe.probe(url, read_seconds=read_seconds).as_dict()


def pull_snapshot(camera_id: int, url: str) -> media_snapshot.Snapshot:
    """A snapshot by a short pull of the camera (no running stream in this process)."""
    return media_snapshot.take_snapshot(url)


def init_app(app: Flask) -> None:
    """What works without a running supervisor: probing and snapshots by a short pull."""
    app.extensions["bk_prober"] = partial(
        probe_dict, read_seconds=float(app.config["PROBE_READ_SECONDS"])
    )
    app.extensions["bk_snapshot"] = pull_snapshot
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
        self._flight = media_snapshot.SingleFlight()
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
        self.app.extensions["bk_snapshot"] = self.snapshot
        return self

    def stop(self) -> None:
        unsubscribe(self._on_event)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.supervisor.shutdown()
        self.app.extensions["bk_media_state"] = "stopped"
        self.app.extensions["bk_snapshot"] = pull_snapshot

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
            sources = {
                camera.id: CameraSource(
                    camera_id=str(camera.id),
                    url=url,
                    video=_video_mode(camera),
                )
                for camera, url in camera_service.media_sources(self.node)
            }
            demands = watch_service.stream_demand(set(sources), now)
            withheld = watch_service.withheld_cameras(set(sources))
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

    # --- status ----------------------------------------------------------------------------

    def _on_status(self, camera_id: str, status: Status, info: StatusInfo) -> None:
        with self.app.app_context():
            try:
                changed = camera_service.record_status(
                    int(camera_id),
                    CameraStatus(status.value),
                    last_frame_at=info.last_frame_at,
                    reconnects_last_hour=info.reconnects_last_hour,
                    reason=info.reason,
                )
                if changed and status is Status.OFFLINE:
                    self.app.extensions["bk_metrics"].ffmpeg_restarts.inc()
            finally:
                db.session.remove()

    # --- snapshots -------------------------------------------------------------------------

    def snapshot(self, camera_id: int, url: str) -> media_snapshot.Snapshot:
        """One JPEG, single-flight per camera, from the running stream when there is one."""

        def take() -> media_snapshot.Snapshot:
            segment = None
            state = self.supervisor.state(str(camera_id))
            if state is not None and state.running:
                segment = self.supervisor.newest_segment(str(camera_id))
            return media_snapshot.take_snapshot(url, segment=segment)

        return self._flight.run(camera_id, take)


def _video_mode(camera: Camera) -> str:
    """Copy 8-bit H.264 as it comes; transcode anything else (or a camera never probed that
    says otherwise)."""
    probe = camera.probe or {}
    if probe.get("codec") and probe.get("codec") != "h264":
        return "transcode"
    if probe.get("bit_depth") not in (None, 8):
        return "transcode"
    return "copy"


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
