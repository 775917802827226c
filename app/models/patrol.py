"""Patrols (巡查), snapshots (抓拍) and findings (发现的问题)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import (
    AreaCheckResult,
    FindingCategory,
    PatrolMode,
    Severity,
    SnapshotReason,
)


class Patrol(Base):
    __tablename__ = "patrols"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mode: Mapped[PatrolMode] = mapped_column(str_enum(PatrolMode, "patrol_mode"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")

    # In the order they were recorded, so the exported log and the PDF read the same each time.
    area_checks: Mapped[list[PatrolAreaCheck]] = relationship(
        back_populates="patrol", order_by="PatrolAreaCheck.id"
    )
    findings: Mapped[list[Finding]] = relationship(back_populates="patrol", order_by="Finding.id")
    # What the inspector captured during the patrol (read here; written by the snapshot
    # service, which sets Snapshot.patrol_id).
    snapshots: Mapped[list[Snapshot]] = relationship(order_by="Snapshot.id", viewonly=True)


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    reason: Mapped[SnapshotReason] = mapped_column(str_enum(SnapshotReason, "snapshot_reason"))
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrols.id"), index=True)

    camera: Mapped[Camera] = relationship()  # noqa: F821


class PatrolAreaCheck(Base):
    """What the inspector saw in one room during a patrol."""

    __tablename__ = "patrol_area_checks"
    __table_args__ = (UniqueConstraint("patrol_id", "area_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("kitchen_areas.id"))
    result: Mapped[AreaCheckResult] = mapped_column(str_enum(AreaCheckResult, "area_check"))
    note: Mapped[str] = mapped_column(Text, default="")
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    patrol: Mapped[Patrol] = relationship(back_populates="area_checks")


finding_snapshots = Table(
    "finding_snapshots",
    Base.metadata,
    Column("finding_id", ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True),
    Column("snapshot_id", ForeignKey("snapshots.id"), primary_key=True),
)


class Finding(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrols.id"), index=True)
    concern_id: Mapped[int | None] = mapped_column(ForeignKey("concerns.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("kitchen_areas.id"))
    category: Mapped[FindingCategory] = mapped_column(str_enum(FindingCategory, "finding_category"))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "severity"))
    description: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    patrol: Mapped[Patrol | None] = relationship(back_populates="findings")
    snapshots: Mapped[list[Snapshot]] = relationship(secondary=finding_snapshots)
