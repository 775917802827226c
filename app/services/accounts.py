"""Creating accounts and marking agency supervisors (admin CLI, demo data)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.models import Role, User
from app.services import audit
from app.services.auth import hash_password
from app.services.base import transaction

MIN_PASSWORD_LENGTH = 10


def add_staff_user(
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str,
    agency_id: int | None = None,
    centre_id: int | None = None,
    phone: str | None = None,
) -> User:
    """Add a user with a password inside the caller's transaction."""
    if role is Role.PARENT and not current_app.config["DEMO_MODE"]:
        raise Forbidden("家长账号只能通过微信登录，不能设置密码")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(f"密码至少 {MIN_PASSWORD_LENGTH} 位", field="password")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"用户名 {username} 已存在", field="username")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name,
        agency_id=agency_id,
        centre_id=centre_id,
        phone=phone,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", object_type="user", object_id=user.id, role=role.value)
    return user


def create_admin(username: str, password: str) -> User:
    with transaction():
        return add_staff_user(
            username=username, password=password, role=Role.ADMIN, display_name="系统管理员"
        )


def set_supervisor(username: str, on: bool = True) -> User:
    """Mark (or unmark) an inspector as a supervisor of their agency: supervisors are told
    when a notice is escalated and an on-site visit is needed (app/services/notices.py)."""
    with transaction():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"找不到用户 {username}")
        if user.role is not Role.INSPECTOR:
            raise Unprocessable("只有监管人员可以设为负责人", field="username")
        user.is_supervisor = on
        audit.record("user.supervisor_set", object_type="user", object_id=user.id, is_supervisor=on)
    return user
