"""Reading centres within a user's scope, and their meal windows (when parents may watch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from app.errors import Unprocessable
from app.extensions import db
from app.models import Camera, Centre, KitchenArea, MealWindow, Role, User
from app.services import audit
from app.services.base import publish, transaction
from app.services.scope import Access, require_centre, visible_centre_ids

# Centres keep Beijing time; meal windows are wall-clock times there.
CENTRE_TZ = ZoneInfo("Asia/Shanghai")
MAX_MEAL_WINDOWS = 14


@dataclass(frozen=True)
class MealWindowInput:
    label: str
    starts_at: time
    ends_at: time
    weekday: int | None = None


def list_centres(user: User) -> list[Centre]:
    query = select(Centre).order_by(Centre.id)
    visible = visible_centre_ids(user)
    if visible is not None:
        query = query.where(Centre.id.in_(visible))
    return list(db.session.scalars(query))


def get_centre(user: User, centre_id: int) -> Centre:
    return require_centre(user, centre_id, Access.READ)


def cameras_for(user: User, centre_id: int) -> list[Camera]:
    """The centre's cameras; parents see only rooms shown to parents."""
    require_centre(user, centre_id, Access.READ)
    query = (
        select(Camera)
        .join(KitchenArea, Camera.area_id == KitchenArea.id)
        .where(Camera.centre_id == centre_id, Camera.is_enabled.is_(True))
        .order_by(KitchenArea.id, Camera.id)
    )
    if user.role is Role.PARENT:
        query = query.where(KitchenArea.shown_to_parents.is_(True))
    return list(db.session.scalars(query))


def in_meal_window(centre: Centre, at: datetime) -> bool:
    local = at.astimezone(CENTRE_TZ)
    return any(
        (w.weekday is None or w.weekday == local.weekday())
        and w.starts_at <= local.time() < w.ends_at
        for w in centre.meal_windows
    )


def set_meal_windows(user: User, centre_id: int, windows: list[MealWindowInput]) -> Centre:
    """Replace the centre's meal windows (operator of the centre, or an admin)."""
    if len(windows) > MAX_MEAL_WINDOWS:
        raise Unprocessable(f"用餐时段最多 {MAX_MEAL_WINDOWS} 个", field="windows")
    for w in windows:
        if not w.label.strip():
            raise Unprocessable("请填写用餐时段名称", field="label")
        if w.starts_at >= w.ends_at:
            raise Unprocessable(f"“{w.label}”的开始时间必须早于结束时间", field="starts_at")
        if w.weekday is not None and not 0 <= w.weekday <= 6:
            raise Unprocessable("星期取值为 0（周一）到 6（周日）", field="weekday")
    by_day: dict[int | None, list[MealWindowInput]] = {}
    for w in windows:
        by_day.setdefault(w.weekday, []).append(w)
    for day, group in by_day.items():
        daily = by_day.get(None, []) if day is not None else []
        ordered = sorted(group + daily, key=lambda w: w.starts_at)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.starts_at < a.ends_at:
                raise Unprocessable(f"“{a.label}”与“{b.label}”时间重叠", field="windows")
    with transaction():
        centre = require_centre(user, centre_id, Access.MANAGE)
        db.session.execute(delete(MealWindow).where(MealWindow.centre_id == centre.id))
        db.session.expire(centre, ["meal_windows"])
        for w in windows:
            db.session.add(
                MealWindow(
                    centre_id=centre.id,
                    label=w.label.strip(),
                    weekday=w.weekday,
                    starts_at=w.starts_at,
                    ends_at=w.ends_at,
                )
            )
        audit.record(
            "centre.meal_windows_set",
            actor_id=user.id,
            object_type="centre",
            object_id=centre.id,
            count=len(windows),
        )
        publish("centre.meal_windows_changed", centre_id=centre.id)
    db.session.refresh(centre)
    return centre
