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


# --- a camera already bad when a meal window opens -------------------------------------------

CHINA = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int, minute: int) -> dt.datetime:
    """A moment in March 2026, China time."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=CHINA)


@pytest.fixture
def lunch(site):
    """Lunch 11:30–13:00 every day; the cooking-room camera went bad at 08:00 on 2 March."""
    window = site["centre"].meal_windows[0]
    window.starts_at, window.ends_at = dt.time(11, 30), dt.time(13, 0)
    camera = site["camera"]
    camera.status, camera.status_changed_at = CameraStatus.OFFLINE, at(2, 8, 0)
    db.session.commit()
    return site


def _to(site, event: str) -> list[tuple[int | None, str | None]]:
    return [(r.recipient_id, r.destination) for r in _rows(event)]


def test_a_camera_offline_before_the_window_opens_is_reported_when_it_opens(lunch):
    camera_id, operator_id = lunch["camera"].id, lunch["operator"].id
    assert cameras.report_at_window_open(at(2, 11, 29)) == []  # nobody relies on it yet
    assert cameras.report_at_window_open(at(2, 11, 31)) == [camera_id]
    assert cameras.report_at_window_open(at(2, 11, 40)) == []  # once per window
    assert _to(lunch, "camera.offline") == [(operator_id, None)]
    row = _rows("camera.offline")[0]
    message = render("camera.offline", row.payload, audience=PERSON, role="operator")
    text = message.as_text()
    assert "操作间摄像头（操作间）" in text and "状态：离线" in text
    assert "用餐时段开始时仍未恢复" in text


def test_the_regulators_hear_of_it_only_once_it_persists_into_the_window(lunch, app):
    camera_id = lunch["camera"].id
    escalate_after = dt.timedelta(seconds=app.config["CAMERA_ALERT_ESCALATE_S"])
    cameras.report_at_window_open(at(2, 11, 31))
    # Offline for hours, but only minutes of the window: the operator has time to act.
    assert cameras.escalate_persistent_alerts(at(2, 11, 35)) == []
    assert cameras.escalate_persistent_alerts(at(2, 11, 31) + escalate_after) == [camera_id]
    assert cameras.escalate_persistent_alerts(at(2, 12, 30)) == []
    assert [d for _, d in _to(lunch, "camera.offline") if d] == ["meilan-market"]


def test_each_window_it_stays_bad_reports_it_again(lunch):
    camera_id = lunch["camera"].id
    assert cameras.report_at_window_open(at(2, 11, 31)) == [camera_id]
    assert cameras.report_at_window_open(at(3, 11, 31)) == [camera_id]
    assert len(_rows("camera.offline")) == 2


def test_a_camera_back_online_before_the_window_is_not_reported(lunch):
    lunch["camera"].status = CameraStatus.ONLINE
    db.session.commit()
    assert cameras.report_at_window_open(at(2, 11, 31)) == []
    assert _rows("camera.offline") == []


def test_a_drop_inside_the_window_is_not_reported_again_by_the_window_sweep(site):
    _offline(site["camera"])
    assert cameras.report_at_window_open() == []
    assert len(_rows("camera.offline")) == 1


def test_the_camera_sweep_runs_every_minute(app):
    task = app.extensions["bk_tasks"]["camera_alerts"]
    assert task.s().validate_datetime(dt.datetime(2026, 3, 2, 11, 31))
    assert task.s().validate_datetime(dt.datetime(2026, 3, 2, 11, 32))


# --- a covered or blacked-out camera -----------------------------------------------------------


def test_a_tampered_camera_tells_the_operator_what_it_looks_like(site):
    assert cameras.record_status(
        site["camera"].id,
        CameraStatus.TAMPERED,
        last_frame_at=None,
        reconnects_last_hour=0,
        reason="画面全黑（镜头可能被遮挡）",
    )
    [row] = _rows("camera.tampered")
    assert row.recipient_id == site["operator"].id
    assert _rows("camera.offline") == []
    message = render(
        "camera.tampered",
        row.payload,
        audience=PERSON,
        role="operator",
        centre_name="阳光小树苗托管中心",
        base_url="https://mcll.example.cn",
    )
    text = message.as_text()
    assert message.title == "【摄像头画面异常】阳光小树苗托管中心"
    assert "状态：画面异常" in text and "说明：画面全黑（镜头可能被遮挡）" in text
    assert message.url == "https://mcll.example.cn/#/operator/cameras"


def test_a_camera_covered_before_the_window_is_reported_as_tampered(lunch):
    lunch["camera"].status = CameraStatus.TAMPERED
    db.session.commit()
    assert cameras.report_at_window_open(at(2, 11, 31)) == [lunch["camera"].id]
    assert _to(lunch, "camera.tampered") == [(lunch["operator"].id, None)]
