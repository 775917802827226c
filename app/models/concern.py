"""Parents' concerns (家长反映), their history, and the findings and notices they led to."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import ConcernStatus

# Notices an inspector linked when resolving a concern (findings link by Finding.concern_id).
concern_notices = Table(
    "concern_notices",
    Base.metadata,
    Column("concern_id", ForeignKey("concerns.id", ondelete="CASCADE"), primary_key=True),
    Column("notice_id", ForeignKey("rectification_notices.id"), primary_key=True),
)


class Concern(Base):
    __tablename__ = "concerns"
    __table_args__ = (
        # A retried submit with the same client key never makes a second concern.
        UniqueConstraint("parent_id", "client_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("kitchen_areas.id"))
    client_key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(16), default="app")  # app / wechat
    status: Mapped[ConcernStatus] = mapped_column(
        str_enum(ConcernStatus, "concern_status"), default=ConcernStatus.SUBMITTED, index=True
    )
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decide_by: Mapped[date]
    resolve_by: Mapped[date]
    deadline_provisional: Mapped[bool] = mapped_column(default=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)  # dismissal reason or resolution

    history: Mapped[list[ConcernEvent]] = relationship(
        back_populates="concern", order_by="ConcernEvent.id"
    )
    centre: Mapped[Centre] = relationship()  # noqa: F821
    parent: Mapped[User] = relationship(foreign_keys=[parent_id])  # noqa: F821
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])  # noqa: F821
    area: Mapped[KitchenArea | None] = relationship()  # noqa: F821
    photos: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")  # noqa: F821
    findings: Mapped[list[Finding]] = relationship(order_by="Finding.id")  # noqa: F821
    notices: Mapped[list[RectificationNotice]] = relationship(  # noqa: F821
        secondary=concern_notices, order_by="RectificationNotice.id"
    )


class ConcernEvent(Base):
    """Append-only history of a concern (triggers in the migration refuse changes)."""

    __tablename__ = "concern_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[ConcernStatus | None] = mapped_column(
        str_enum(ConcernStatus, "from_concern_status")
    )
    to_status: Mapped[ConcernStatus] = mapped_column(str_enum(ConcernStatus, "to_concern_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    concern: Mapped[Concern] = relationship(back_populates="history")
