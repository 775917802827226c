"""Stored files, the notification outbox, inbound chat messages, watch sessions, the audit
log and the working-day calendar."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, str_enum, utcnow
from app.models.enums import AttachmentKind, Channel, NotificationStatus


class Attachment(Base):
    """An uploaded photo or document, owned by exactly one response, concern or check."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN notice_response_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN concern_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN checklist_result_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="exactly_one_owner",
        ),
        CheckConstraint("size_bytes > 0", name="not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AttachmentKind] = mapped_column(str_enum(AttachmentKind, "attachment_kind"))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(512))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notice_response_id: Mapped[int | None] = mapped_column(
        ForeignKey("notice_responses.id"), index=True
    )
    concern_id: Mapped[int | None] = mapped_column(ForeignKey("concerns.id"), index=True)
    checklist_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("checklist_results.id"), index=True
    )


class Notification(Base):
    """The outbox: one row per message to deliver, written in the transaction it reports."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint(
            "recipient_id IS NOT NULL OR destination IS NOT NULL", name="has_recipient"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Makes enqueueing idempotent: the same event never queues the same message twice.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # A group-robot destination name (agency chat) when there is no single recipient.
    destination: Mapped[str | None] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))  # e.g. notice.issued
    payload: Mapped[dict]
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, "notification_status"),
        default=NotificationStatus.PENDING,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class InboundMessage(Base):
    """A chat callback, stored first; the unique key makes the platform's retries one record."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    dedupe_key: Mapped[str] = mapped_column(String(160))
    sender: Mapped[str] = mapped_column(String(64), index=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class WatchSession(Base):
    """Who watched which camera, from when to when."""

    __tablename__ = "watch_sessions"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    purpose: Mapped[str] = mapped_column(String(16), default="live")  # live / patrol / review


class AuditLog(Base):
    """Append-only record of security-relevant actions (logins, role changes, exports)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None]
    ip: Mapped[str | None] = mapped_column(String(45))


class CalendarYear(Base):
    """A year whose statutory holiday schedule is known (from the library or entered by an
    admin). Years not listed count Monday–Friday and make deadlines provisional."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # chinese-calendar / admin
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CalendarDay(Base):
    """A day that breaks the Monday–Friday rule: a weekday holiday or a weekend workday."""

    __tablename__ = "calendar_days"
    __table_args__ = (UniqueConstraint("day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year"), index=True)
    is_workday: Mapped[bool]
    name: Mapped[str] = mapped_column(String(32), default="")
