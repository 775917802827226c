"""Rectification notices (整改通知书), their history, responses and follow-ups."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import FollowUpKind, NoticeStatus, ReviewMode
from app.models.patrol import Finding

notice_findings = Table(
    "notice_findings",
    Base.metadata,
    Column(
        "notice_id", ForeignKey("rectification_notices.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("finding_id", ForeignKey("findings.id"), primary_key=True),
)


class NoticeCounter(Base):
    """The last number issued per agency and year; row-locked so numbers stay gapless."""

    __tablename__ = "notice_counters"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(default=0)


class RectificationNotice(Base):
    __tablename__ = "rectification_notices"
    __table_args__ = (
        UniqueConstraint("agency_id", "year", "seq"),
        UniqueConstraint("number"),
        CheckConstraint(
            "status IN ('draft', 'withdrawn') OR number IS NOT NULL", name="issued_has_number"
        ),
        CheckConstraint(
            "status = 'draft' OR status = 'withdrawn' OR deadline IS NOT NULL",
            name="issued_has_deadline",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    status: Mapped[NoticeStatus] = mapped_column(
        str_enum(NoticeStatus, "notice_status"), default=NoticeStatus.DRAFT, index=True
    )
    year: Mapped[int | None]
    seq: Mapped[int | None]
    number: Mapped[str | None] = mapped_column(String(64))  # 美兰市监整〔2026〕17号
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    requirements: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[date | None]
    deadline_working_days: Mapped[int | None]
    # True when the deadline was counted Monday–Friday for a year with no published calendar.
    deadline_provisional: Mapped[bool] = mapped_column(default=False)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[datetime | None]
    served_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # The latest review; each round's own evidence stays on its `NoticeResponse`.
    review_mode: Mapped[ReviewMode | None] = mapped_column(str_enum(ReviewMode, "review_mode"))
    review_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    # Set when the notice is escalated (逾期上报): from then on a review must be made on site.
    onsite_required: Mapped[bool] = mapped_column(default=False, server_default=false())

    findings: Mapped[list[Finding]] = relationship(secondary=notice_findings)
    history: Mapped[list[NoticeEvent]] = relationship(
        back_populates="notice", order_by="NoticeEvent.id"
    )
    responses: Mapped[list[NoticeResponse]] = relationship(
        back_populates="notice", order_by="NoticeResponse.round"
    )
    follow_ups: Mapped[list[FollowUp]] = relationship(
        back_populates="notice", order_by="FollowUp.happened_at"
    )


class NoticeEvent(Base):
    """Append-only history of a notice: who moved it from where to where, when and why.

    The database refuses UPDATE and DELETE on this table (triggers in the migration).
    """

    __tablename__ = "notice_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rectification_notices.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL = the system
    from_status: Mapped[NoticeStatus | None] = mapped_column(
        str_enum(NoticeStatus, "from_notice_status")
    )
    to_status: Mapped[NoticeStatus] = mapped_column(str_enum(NoticeStatus, "to_notice_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    notice: Mapped[RectificationNotice] = relationship(back_populates="history")


class NoticeResponse(Base):
    """An operator's answer (整改回复), one per round; a return opens the next round."""

    __tablename__ = "notice_responses"
    __table_args__ = (
        UniqueConstraint("notice_id", "round"),
        CheckConstraint("round >= 1", name="round_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rectification_notices.id"), index=True)
    round: Mapped[int]
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The inspector's decision on this round.
    reviewed_at: Mapped[datetime | None]
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted: Mapped[bool | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    # How this round was reviewed and the snapshot taken as evidence, kept per round so a
    # later review does not overwrite an earlier one's evidence.
    review_mode: Mapped[ReviewMode | None] = mapped_column(str_enum(ReviewMode, "review_mode"))
    review_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))

    notice: Mapped[RectificationNotice] = relationship(back_populates="responses")
    photos: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")  # noqa: F821


class FollowUp(Base):
    """A phone call, on-site visit or message an inspector logged on a notice."""

    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rectification_notices.id"), index=True)
    kind: Mapped[FollowUpKind] = mapped_column(str_enum(FollowUpKind, "follow_up_kind"))
    happened_at: Mapped[datetime]
    contact: Mapped[str] = mapped_column(String(128))  # whom the inspector spoke to
    outcome: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    notice: Mapped[RectificationNotice] = relationship(back_populates="follow_ups")
