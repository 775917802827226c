"""Prometheus metrics: what an operator's dashboard scrapes."""

from __future__ import annotations

import datetime as dt
import socket

from app.extensions import db
from app.media_runner import MediaRunner
from app.models import (
    AreaKind,
    Camera,
    CameraStatus,
    Channel,
    Notification,
    NotificationStatus,
)
from app.services import base as events
from tests import factories as f
from tests.media_helpers import wait_until


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics_count_cameras_by_status_and_the_outbox(client, app):
    centre = f.centre(f.district())
    online = f.camera(centre)
    online.status = CameraStatus.ONLINE
    f.camera(centre, AreaKind.PREP).status = CameraStatus.OFFLINE
    f.camera(centre, AreaKind.WASHING).status = CameraStatus.OFFLINE
    db.session.add_all(
        [
            Notification(
                idempotency_key="a",
                channel=Channel.WECOM_ROBOT,
                destination="g",
                event="notice.issued",
                payload={},
            ),
            Notification(
                idempotency_key="b",
                channel=Channel.WECOM_ROBOT,
                destination="g",
                event="notice.issued",
                payload={},
                status=NotificationStatus.FAILED,
            ),
        ]
    )
    db.session.commit()
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert _value(text, 'bk_cameras{status="online"}') == 1
    assert _value(text, 'bk_cameras{status="offline"}') == 2
    assert _value(text, "bk_outbox_backlog") == 1
    assert _value(text, "bk_outbox_delivery_failures") == 1
    assert (
        'bk_http_request_duration_seconds_count{endpoint="/healthz",method="GET",status="200"}'
        in text
    )


def test_metrics_are_refused_from_another_host_without_the_token(client, app):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 403
    app.config["METRICS_TOKEN"] = "scrape-me"
    allowed = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
        headers={"Authorization": "Bearer scrape-me"},
    )
    assert allowed.status_code == 200


def _refused_url() -> str:
    """An RTSP address where nothing listens: every ffmpeg started on it exits at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"rtsp://127.0.0.1:{s.getsockname()[1]}/cam"


def test_every_ffmpeg_restart_is_counted_not_only_status_changes(client, app):
    centre = f.centre(f.district())
    centre.meal_windows[0].starts_at = dt.time(0, 0)  # kept warm all day: the runner pulls it
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
    camera_id = f.camera(centre, AreaKind.COOKING, url=_refused_url()).id
    db.session.commit()
    statuses: list[str] = []

    def record(name: str, data: dict) -> None:  # called in the runner's thread
        if name == "camera.status" and data["camera_id"] == camera_id:
            statuses.append(data["status"])

    events.subscribe(record)
    # The media runner as `flask bk media` runs it, with short retries: its restarts must
    # reach this web app's /metrics through the database.
    runner = MediaRunner(
        app, reconcile_every=0.3, backoff_initial=0.2, backoff_cap=0.4, tick=0.2, stop_grace=1
    ).start()
    try:

        def restarts() -> float:
            return _value(
                client.get("/metrics").get_data(as_text=True), "bk_ffmpeg_restarts_last_hour"
            )

        assert wait_until(lambda: restarts() >= 4, timeout=20)
    finally:
        runner.stop()
        events.unsubscribe(record)
    assert statuses == ["offline"]  # one status change for all those restarts
    db.session.rollback()
    assert db.session.get(Camera, camera_id).reconnects_last_hour >= 4
