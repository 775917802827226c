"""Districts, agencies (with their jurisdiction), people and their sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow
from app.models.enums import AgencyKind, Role


class District(Base):
    """An administrative area (city or district, 区). Jurisdiction follows the tree."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)  # GB/T 2260 code
    name: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))

    parent: Mapped[District | None] = relationship(remote_side=[id])


class Agency(Base):
    """A regulator (market regulation or education bureau) with its jurisdiction."""

    __tablename__ = "agencies"
    __table_args__ = (UniqueConstraint("district_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[AgencyKind] = mapped_column(str_enum(AgencyKind, "agency_kind"))
    # The district the agency regulates; its child districts are included.
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    # Short name used in notice numbers, e.g. "美兰市监整" → 美兰市监整〔2026〕17号.
    notice_prefix: Mapped[str] = mapped_column(String(16))
    # Group-chat destinations for this agency's inspectors (robot keys are secrets).
    chat_destinations: Mapped[dict | None] = mapped_column(default=None)

    district: Mapped[District] = relationship()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role <> 'inspector' OR agency_id IS NOT NULL", name="inspector_has_agency"
        ),
        CheckConstraint("role <> 'operator' OR centre_id IS NOT NULL", name="operator_has_centre"),
        # Any one identity will do: a password login, the official account, the
        # mini-program (a parent's first `wx.login` creates a user with only this) or WeCom.
        CheckConstraint(
            "username IS NOT NULL OR wechat_openid IS NOT NULL OR wxa_openid IS NOT NULL"
            " OR wecom_userid IS NOT NULL",
            name="has_login",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    # Parents are identified by their WeChat openid (official account or mini-program).
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    wxa_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    wechat_unionid: Mapped[str | None] = mapped_column(String(64))
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"))
    is_active: Mapped[bool] = mapped_column(default=True)
    # An inspector who leads the agency's work (科室负责人): told when a notice is escalated, so
    # an on-site visit gets arranged. An agency may have several; the flag means nothing for
    # other roles (services only read it for inspectors).
    is_supervisor: Mapped[bool] = mapped_column(default=False, server_default=false())
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    agency: Mapped[Agency | None] = relationship()
    centre: Mapped[Centre | None] = relationship(foreign_keys=[centre_id])  # noqa: F821


class RefreshToken(Base):
    """A refresh token, stored only as its SHA-256. Rotated on use; reuse revokes the family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
