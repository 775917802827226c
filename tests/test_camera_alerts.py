"""A camera that goes bad during a meal window: the operator is told in chat, and the
regulators' group robots if it stays bad."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AreaKind, CameraStatus, CentreStatus, Notification
from app.services import cameras
from bots.render import PERSON, render
from tests import factories as f


@pytest.fixture
def site(app):
    district = f.district()
    agency = f.agency(district)
    agency.chat_destinations = {"wecom_robot": "meilan-market"}
    centre = f.centre(district, "阳光小树苗托管中心", status=CentreStatus.LIVE)
    centre.meal_windows[0].starts_at = dt.time(0, 0)
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
    camera = f.camera(centre, AreaKind.COOKING)
    camera.status = CameraStatus.ONLINE
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator"
    db.session.commit()
    return {"centre": centre, "camera": camera, "operator": operator}


def _rows(event: str) -> list[Notification]:
    db.session.rollback()
    return list(db.session.scalars(select(Notification).where(Notification.event == event)))


def _offline(camera) -> bool:
    return cameras.record_status(
        camera.id,
        CameraStatus.OFFLINE,
        last_frame_at=None,
        reconnects_last_hour=1,
        reason="connection refused",
    )


def test_the_operator_is_told_once_when_a_camera_drops_in_a_meal_window(site):
    assert _offline(site["camera"]) is True
    assert _offline(site["camera"]) is False  # still offline: no second message
    rows = _rows("camera.offline")
    assert [(r.recipient_id, r.payload["camera_name"]) for r in rows] == [
        (site["operator"].id, "操作间摄像头")
    ]


def test_no_one_is_told_outside_meal_windows(site):
    window = site["centre"].meal_windows[0]
    now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    window.starts_at = (now + dt.timedelta(hours=2)).time() if now.hour < 20 else dt.time(0, 0)
    window.ends_at = (now + dt.timedelta(hours=3)).time() if now.hour < 20 else dt.time(0, 1)
    db.session.commit()
    _offline(site["camera"])
    assert _rows("camera.offline") == []


def test_a_camera_still_down_after_ten_minutes_reaches_the_regulators_once(site, app):
    _offline(site["camera"])
    assert cameras.escalate_persistent_alerts() == []  # not yet ten minutes
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=app.config["CAMERA_ALERT_ESCALATE_S"])
    assert cameras.escalate_persistent_alerts(later) == [site["camera"].id]
    assert cameras.escalate_persistent_alerts(later) == []
    groups = [r.destination for r in _rows("camera.offline") if r.destination]
    assert groups == ["meilan-market"]


def test_the_chat_message_names_the_camera_and_what_to_do(site):
    _offline(site["camera"])
    row = _rows("camera.offline")[0]
    message = render(
        "camera.offline", row.payload, audience=PERSON, centre_name="阳光小树苗托管中心"
    )
    text = "\n".join([message.title, *message.lines])
    assert "【摄像头离线】阳光小树苗托管中心" in text
    assert "操作间摄像头（操作间）" in text
    assert "状态：离线" in text
