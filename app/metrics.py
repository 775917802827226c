"""Prometheus metrics at /metrics: request latency, cameras by status, ffmpeg restarts,
outbox backlog and delivery failures.

Database-derived figures are read at scrape time, so every web process reports the same
truth; request latency is per process (scrape each, or set PROMETHEUS_MULTIPROC_DIR under
gunicorn as prometheus-client documents). ffmpeg restarts happen in the media processes
(`flask bk media`, which serve no /metrics): each node writes its cameras' restarts of the last
hour to their rows (app/media_runner.py), and they are exported from there.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.errors import Forbidden


class Metrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    def __init__(self, app: Flask) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "bk_http_request_duration_seconds",
            "HTTP request latency by endpoint",
            ["method", "endpoint", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.registry.register(DatabaseCollector(app))


class DatabaseCollector(Collector):
    """Cameras by status, ffmpeg restarts and the outbox, counted when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self) -> list:
        # Declared so registering does not run collect() (the schema may not exist yet).
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from app.extensions import db
        from app.models import Camera, CameraStatus, Notification, NotificationStatus

        with self.app.app_context():
            cameras = dict(
                db.session.execute(
                    select(Camera.status, func.count())
                    .where(Camera.is_enabled.is_(True))
                    .group_by(Camera.status)
                ).all()
            )
            restarts = db.session.scalar(
                select(func.coalesce(func.sum(Camera.reconnects_last_hour), 0)).where(
                    Camera.is_enabled.is_(True)
                )
            )
            outbox = dict(
                db.session.execute(
                    select(Notification.status, func.count()).group_by(Notification.status)
                ).all()
            )
            db.session.remove()
        family = GaugeMetricFamily("bk_cameras", "Enabled cameras by status", labels=["status"])
        for status in CameraStatus:
            family.add_metric([status.value], cameras.get(status, 0))
        yield family
        # A gauge, not a counter: the rows hold a sliding hour, which falls as restarts age.
        yield GaugeMetricFamily(
            "bk_ffmpeg_restarts_last_hour",
            "ffmpeg restarts by the media supervisors in the last hour, all enabled cameras",
            value=restarts or 0,
        )
        yield GaugeMetricFamily(
            "bk_outbox_backlog",
            "Messages waiting to be delivered",
            value=outbox.get(NotificationStatus.PENDING, 0)
            + outbox.get(NotificationStatus.SENDING, 0),
        )
        yield GaugeMetricFamily(
            "bk_outbox_delivery_failures",
            "Messages given up after all retries",
            value=outbox.get(NotificationStatus.FAILED, 0),
        )


def _allowed(remote: str | None) -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if token and request.headers.get("Authorization") == f"Bearer {token}":
        return True
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    collected = Metrics(app)
    app.extensions["bk_metrics"] = collected

    @app.before_request
    def _start_timer() -> None:
        g.bk_request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("bk_request_started", None)
        if started is not None:
            collected.request_seconds.labels(
                request.method,
                request.url_rule.rule if request.url_rule else "unmatched",
                str(response.status_code),
            ).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        if not _allowed(request.remote_addr):
            raise Forbidden("仅限监控系统访问", reason="metrics")
        return Response(generate_latest(collected.registry), mimetype=CONTENT_TYPE_LATEST)
