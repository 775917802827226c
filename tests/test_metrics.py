"""Prometheus metrics: what an operator's dashboard scrapes."""

from __future__ import annotations

from app.extensions import db
from app.models import AreaKind, CameraStatus, Channel, Notification, NotificationStatus
from tests import factories as f


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
