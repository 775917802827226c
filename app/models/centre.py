"""Centres, their rooms, meal windows, cameras, and the parents linked to them."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import AreaKind, CameraStatus, CentreStatus
from app.models.org import Agency, District, User


class Centre(Base):
    """An after-school childcare centre (托管机构)."""

    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    licence_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[CentreStatus] = mapped_column(
        str_enum(CentreStatus, "centre_status"), default=CentreStatus.INVITED
    )
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the centre is suspended, shown to parents whose live view stopped.
    suspension_reason: Mapped[str | None] = mapped_column(String(255))

    district: Mapped[District] = relationship()
    areas: Mapped[list[KitchenArea]] = relationship(
        back_populates="centre", order_by="KitchenArea.id"
    )
    meal_windows: Mapped[list[MealWindow]] = relationship(
        back_populates="centre",
        order_by="[MealWindow.weekday.nulls_first(), MealWindow.starts_at]",
        cascade="all, delete-orphan",
    )
    cameras: Mapped[list[Camera]] = relationship(back_populates="centre", order_by="Camera.id")


class CentreStatusChange(Base):
    """Append-only history of a centre's lifecycle (invited → … → live / suspended)."""

    __tablename__ = "centre_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    from_status: Mapped[CentreStatus | None] = mapped_column(
        str_enum(CentreStatus, "from_centre_status")
    )
    to_status: Mapped[CentreStatus] = mapped_column(str_enum(CentreStatus, "to_centre_status"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CentreInvitation(Base):
    """The invitation letter (倡议书) an agency sent a centre."""

    __tablename__ = "centre_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    letter: Mapped[str] = mapped_column(Text, default="")

    agency: Mapped[Agency] = relationship()


class MealWindow(Base):
    """When parents may watch: a daily (or per-weekday) window in the centre's local time."""

    __tablename__ = "meal_windows"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="starts_before_ends"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name="weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(32))  # 早餐 / 午餐 / 晚餐 / 点心
    weekday: Mapped[int | None]  # 0 = Monday … 6 = Sunday; NULL = every day
    starts_at: Mapped[time]
    ends_at: Mapped[time]

    centre: Mapped[Centre] = relationship(back_populates="meal_windows")


class KitchenArea(Base):
    """A kitchen room: prep 备餐间, storage 储存间, cooking 操作间, washing 清洗间 (or other)."""

    __tablename__ = "kitchen_areas"
    __table_args__ = (UniqueConstraint("centre_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    kind: Mapped[AreaKind] = mapped_column(str_enum(AreaKind, "area_kind"))
    name: Mapped[str] = mapped_column(String(32))
    shown_to_parents: Mapped[bool] = mapped_column(default=True)

    centre: Mapped[Centre] = relationship(back_populates="areas")


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("kitchen_areas.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # Fernet token of the RTSP URL (credentials included); never leaves the server.
    rtsp_url_encrypted: Mapped[str] = mapped_column(Text)
    # The URL with credentials removed, safe to show and log.
    rtsp_url_redacted: Mapped[str] = mapped_column(String(512))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    status: Mapped[CameraStatus] = mapped_column(
        str_enum(CameraStatus, "camera_status"), default=CameraStatus.UNKNOWN
    )
    status_changed_at: Mapped[datetime | None]
    last_frame_at: Mapped[datetime | None]
    reconnects_last_hour: Mapped[int] = mapped_column(default=0)
    # Which media node supervises this camera: claimed by a live node (app/services/media_nodes)
    # and taken over by another when that node stops sending heartbeats. None: not yet claimed.
    media_node: Mapped[str | None] = mapped_column(String(64), index=True)
    # Last probe (commissioning): codec, profile, width, height, fps, keyframe interval…
    probe: Mapped[dict | None]
    probed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    centre: Mapped[Centre] = relationship(back_populates="cameras")
    area: Mapped[KitchenArea] = relationship()


class MediaNode(Base):
    """A media process (`flask bk media --node NAME`) and when it last said it was alive."""

    __tablename__ = "media_nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TechnicianAssignment(Base):
    """A technician installs and commissions the centres assigned to them."""

    __tablename__ = "technician_assignments"
    __table_args__ = (UniqueConstraint("technician_id", "centre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class InviteCode(Base):
    """A code (or QR payload) a parent uses to bind to a centre."""

    __tablename__ = "invite_codes"
    __table_args__ = (
        CheckConstraint("max_uses >= 1", name="max_uses_positive"),
        CheckConstraint("uses >= 0 AND uses <= max_uses", name="uses_within_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(default=50)
    uses: Mapped[int] = mapped_column(default=0)
    revoked_at: Mapped[datetime | None]

    centre: Mapped[Centre] = relationship()


class ParentLink(Base):
    """A parent's link to a centre their child attends."""

    __tablename__ = "parent_links"
    __table_args__ = (UniqueConstraint("parent_id", "centre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    invite_code_id: Mapped[int | None] = mapped_column(ForeignKey("invite_codes.id"))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[User] = relationship()
    centre: Mapped[Centre] = relationship()


class BindFailure(Base):
    """A failed attempt to bind with an invite code. Failures are counted over a rolling window,
    per parent and per address, to stop codes being guessed. Only the fact and the time are
    kept: never the code that was tried."""

    __tablename__ = "bind_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str | None] = mapped_column(String(45), index=True)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
