"""Records that pile up are purged after their retention; nothing pending, failed, open or
still usable is touched."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import (
    Channel,
    Notification,
    NotificationStatus,
    RefreshToken,
    WatchSession,
    utcnow,
)
from app.services import retention
from tests import factories as f


def _notification(key: str, status: NotificationStatus, sent_days_ago: float | None) -> None:
    now = utcnow()
    db.session.add(
        Notification(
            idempotency_key=key,
            channel=Channel.WECOM_ROBOT,
            destination="meilan-group",
            event="notice.issued",
            payload={"title": key},
            status=status,
            created_at=now - timedelta(days=(sent_days_ago or 0) + 1),
            sent_at=None if sent_days_ago is None else now - timedelta(days=sent_days_ago),
        )
    )


def test_old_records_are_purged_and_everything_still_needed_is_kept(app, client):
    app.config.update(NOTIFICATION_RETENTION_DAYS=90, WATCH_SESSION_RETENTION_DAYS=365)
    district = f.district()
    centre = f.centre(district)
    camera = f.camera(centre)
    parent = f.parent_of(centre)
    keeper = f.inspector_of(f.agency(district))
    now = utcnow()
    _notification("sent-long-ago", NotificationStatus.SENT, 91)
    _notification("sent-recently", NotificationStatus.SENT, 89)
    _notification("failed-long-ago", NotificationStatus.FAILED, None)
    _notification("still-pending", NotificationStatus.PENDING, None)
    for started, ended in ((400, 399), (100, 99), (400, None)):
        db.session.add(
            WatchSession(
                user_id=parent.id,
                camera_id=camera.id,
                started_at=now - timedelta(days=started),
                ended_at=None if ended is None else now - timedelta(days=ended),
            )
        )
    for name, expires in (("expired", -2), ("just-expired", -0.5), ("valid", 10)):
        db.session.add(
            RefreshToken(
                user_id=parent.id,
                token_hash=name.ljust(64, "0"),
                family=name,
                issued_at=now - timedelta(days=30),
                expires_at=now + timedelta(days=expires),
            )
        )
    db.session.commit()
    signed_in = client.post(
        "/api/v1/auth/login", json={"username": keeper.username, "password": f.PASSWORD}
    ).get_json()

    purged = retention.purge_old_records()

    assert (purged.refresh_tokens, purged.notifications, purged.watch_sessions) == (1, 1, 1)
    keys = set(db.session.scalars(select(Notification.idempotency_key)))
    assert keys == {"sent-recently", "failed-long-ago", "still-pending"}
    families = set(db.session.scalars(select(RefreshToken.family)))
    assert {"just-expired", "valid"} <= families and "expired" not in families
    sessions = db.session.scalars(select(WatchSession).order_by(WatchSession.id)).all()
    assert [(s.ended_at is None) for s in sessions] == [False, True]  # the open one is kept
    # A signed-in user is not signed out by the purge.
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.get_json()
    assert retention.purge_old_records() == retention.Purged(0, 0, 0)


def test_the_purge_runs_every_night(app):
    task = app.extensions["bk_tasks"]["record_retention"]
    assert task.s().validate_datetime(datetime(2026, 11, 30, 3, 47))
    assert not task.s().validate_datetime(datetime(2026, 11, 30, 4, 47))
    assert task.call_local() == (0, 0, 0)  # nothing to purge in an empty database
