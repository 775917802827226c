"""The commissioning standard (逐项检查规范) as data, and each centre's checks against it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import ChecklistItemKind


class ChecklistStandard(Base):
    """A versioned checklist; centres are commissioned against one version."""

    __tablename__ = "checklist_standards"
    __table_args__ = (UniqueConstraint("version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(128))
    is_active: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list[ChecklistItem]] = relationship(
        back_populates="standard", order_by="ChecklistItem.position"
    )


class ChecklistItem(Base):
    __tablename__ = "checklist_items"
    __table_args__ = (UniqueConstraint("standard_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("checklist_standards.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # e.g. "area_coverage", "signage_photo"
    title: Mapped[str] = mapped_column(String(128))
    kind: Mapped[ChecklistItemKind] = mapped_column(str_enum(ChecklistItemKind, "checklist_kind"))
    required: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    # Parameters of an automatic rule, e.g. {"min_height": 720, "min_fps": 15}.
    rule: Mapped[dict | None]
    guidance: Mapped[str] = mapped_column(Text, default="")

    standard: Mapped[ChecklistStandard] = relationship(back_populates="items")


class Commissioning(Base):
    """One commissioning of a centre against a standard, signed off by a technician."""

    __tablename__ = "commissionings"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("checklist_standards.id"))
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_off_at: Mapped[datetime | None]
    signed_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    results: Mapped[list[ChecklistResult]] = relationship(back_populates="commissioning")


class ChecklistResult(Base):
    """The latest outcome of one item in one commissioning (probe result or evidence)."""

    __tablename__ = "checklist_results"
    __table_args__ = (UniqueConstraint("commissioning_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commissioning_id: Mapped[int] = mapped_column(
        ForeignKey("commissionings.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("checklist_items.id"))
    passed: Mapped[bool]
    detail: Mapped[dict | None]
    note: Mapped[str] = mapped_column(Text, default="")
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    commissioning: Mapped[Commissioning] = relationship(back_populates="results")
    item: Mapped[ChecklistItem] = relationship()
