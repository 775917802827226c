"""Audit log rows, written inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from app.extensions import db
from app.models import AuditLog


def record(
    action: str,
    *,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    db.session.add(
        AuditLog(
            action=action,
            actor_id=actor_id,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            detail=detail or None,
            ip=ip,
        )
    )
