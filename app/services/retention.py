"""How long the records that pile up are kept: expired refresh tokens, delivered chat messages
and ended watch sessions. Pending and failed messages, open sessions and everything a regulator
may need as evidence (notices, concerns, findings, the audit log) are never deleted here;
snapshots have their own retention (snapshots.purge_expired)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete

from app.extensions import db
from app.models import Notification, NotificationStatus, RefreshToken, WatchSession, utcnow
from app.services.base import transaction


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    notifications: int
    watch_sessions: int


def purge_old_records(now: datetime | None = None) -> Purged:
    """One transaction; safe to run again or on several workers at once (plain deletes)."""
    now = now or utcnow()
    cfg = current_app.config
    with transaction():
        # An expired refresh token opens nothing any more; a day's grace keeps the reuse
        # check meaningful for tokens that only just expired.
        tokens = db.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < now - timedelta(days=1))
        ).rowcount
        sent = db.session.execute(
            delete(Notification).where(
                Notification.status == NotificationStatus.SENT,
                Notification.sent_at < now - timedelta(days=cfg["NOTIFICATION_RETENTION_DAYS"]),
            )
        ).rowcount
        sessions = db.session.execute(
            delete(WatchSession).where(
                WatchSession.ended_at.is_not(None),
                WatchSession.ended_at < now - timedelta(days=cfg["WATCH_SESSION_RETENTION_DAYS"]),
            )
        ).rowcount
    return Purged(tokens, sent, sessions)
