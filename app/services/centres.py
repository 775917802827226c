"""Reading centres within a user's scope, and their meal windows (when parents may watch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import selectinload

from app.errors import Unprocessable
from app.extensions import db
from app.models import (
    Camera,
    Centre,
    Finding,
    KitchenArea,
    MealWindow,
    NoticeResponse,
    NoticeStatus,
    Patrol,
    RectificationNotice,
    Role,
    User,
)
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
    centre = require_centre(user, centre_id, Access.READ)
    return cameras_of(user, centre)


def cameras_of(user: User, centre: Centre) -> list[Camera]:
    """`cameras_for` a centre the caller already has from `require_centre` (no second scope
    check): its enabled cameras in room order, only rooms shown to parents for a parent."""
    query = (
        select(Camera)
        .join(KitchenArea, Camera.area_id == KitchenArea.id)
        .where(Camera.centre_id == centre.id, Camera.is_enabled.is_(True))
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


@dataclass(frozen=True)
class MealWindowTimes:
    """One occurrence of a meal window: the window and its start and end in centre time."""

    window: MealWindow
    starts_at: datetime
    ends_at: datetime

    @property
    def text(self) -> str:
        return window_text(self.window)


def window_text(window: MealWindow) -> str:
    """How a window reads on a parent's screen: 11:30–13:00."""
    return f"{window.starts_at:%H:%M}–{window.ends_at:%H:%M}"


def _occurrences(centre: Centre, day: date) -> list[MealWindowTimes]:
    windows = [w for w in centre.meal_windows if w.weekday is None or w.weekday == day.weekday()]
    return sorted(
        (
            MealWindowTimes(
                w,
                datetime.combine(day, w.starts_at, CENTRE_TZ),
                datetime.combine(day, w.ends_at, CENTRE_TZ),
            )
            for w in windows
        ),
        key=lambda o: o.starts_at,
    )


def current_meal_window(centre: Centre, at: datetime) -> MealWindowTimes | None:
    """The window `at` falls in (the rule of `in_meal_window`), if any."""
    local = at.astimezone(CENTRE_TZ)
    return next(
        (o for o in _occurrences(centre, local.date()) if o.starts_at <= local < o.ends_at), None
    )


def next_meal_window(centre: Centre, at: datetime) -> MealWindowTimes | None:
    """The next window to open after `at`: later today or within the coming week."""
    local = at.astimezone(CENTRE_TZ)
    for offset in range(8):
        for occurrence in _occurrences(centre, local.date() + timedelta(days=offset)):
            if occurrence.starts_at > local:
                return occurrence
    return None


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


# --- the centre's inspection record --------------------------------------------------------


def centre_record(user: User, centre_id: int) -> dict:
    """What a centre's inspection record shows. Parents get the summary the design promises
    (last patrol and its result, open / overdue / verified notice counts); staff in scope get
    the patrols as well, and every notice with everything that happened to it."""
    return record_of(user, require_centre(user, centre_id, Access.READ))


def record_of(user: User, centre: Centre) -> dict:
    """`centre_record` for a centre the caller already has from `require_centre` (no second
    scope check)."""
    last_patrol = db.session.scalar(
        select(Patrol)
        .where(Patrol.centre_id == centre.id, Patrol.ended_at.is_not(None))
        .order_by(Patrol.ended_at.desc())
        .limit(1)
    )
    counts = dict(
        db.session.execute(
            select(RectificationNotice.status, func.count())
            .where(RectificationNotice.centre_id == centre.id)
            .group_by(RectificationNotice.status)
        ).all()
    )
    open_statuses = (
        NoticeStatus.ISSUED,
        NoticeStatus.ACKNOWLEDGED,
        NoticeStatus.RESPONDED,
        NoticeStatus.RETURNED,
        NoticeStatus.OVERDUE,
        NoticeStatus.ESCALATED,
    )
    record: dict = {
        "centre_id": centre.id,
        "centre_name": centre.name,
        "status": centre.status.value,
        "last_patrol": None,
        "notices": {
            "open": sum(counts.get(s, 0) for s in open_statuses),
            "overdue": counts.get(NoticeStatus.OVERDUE, 0) + counts.get(NoticeStatus.ESCALATED, 0),
            "verified": counts.get(NoticeStatus.VERIFIED, 0),
        },
    }
    if last_patrol is not None:
        findings = len(last_patrol.findings)
        record["last_patrol"] = {
            "ended_at": last_patrol.ended_at.isoformat() if last_patrol.ended_at else None,
            "mode": last_patrol.mode.value,
            "findings": findings,
            "result": "未发现问题" if findings == 0 else f"发现 {findings} 个问题",
        }
    # The patrol log and every notice in full: for those who read notices (a technician, like
    # a parent, gets the summary only).
    if user.role in (Role.OPERATOR, Role.INSPECTOR, Role.ADMIN):
        record["patrols"] = [
            {
                "id": p.id,
                "started_at": p.started_at.isoformat(),
                "ended_at": p.ended_at.isoformat() if p.ended_at else None,
                "mode": p.mode.value,
                "findings": len(p.findings),
            }
            for p in db.session.scalars(
                select(Patrol)
                .options(selectinload(Patrol.findings))
                .where(Patrol.centre_id == centre.id)
                .order_by(Patrol.started_at.desc())
                .limit(50)
            )
        ]
        notices = (
            select(RectificationNotice)
            .where(RectificationNotice.centre_id == centre.id)
            .options(
                selectinload(RectificationNotice.history),
                selectinload(RectificationNotice.findings).selectinload(Finding.snapshots),
                selectinload(RectificationNotice.responses).selectinload(NoticeResponse.photos),
                selectinload(RectificationNotice.follow_ups),
            )
        )
        if user.role is Role.OPERATOR:
            # As in app/services/notices.py: a notice never issued is not the operator's.
            notices = notices.where(RectificationNotice.issued_at.is_not(None))
        elif user.role is Role.INSPECTOR:
            # Another agency's drafts are that agency's own business until issued.
            notices = notices.where(
                or_(
                    RectificationNotice.issued_at.is_not(None),
                    RectificationNotice.agency_id == user.agency_id,
                )
            )
        rows = list(db.session.scalars(notices.order_by(RectificationNotice.id.desc()).limit(100)))
        record["notice_list"] = _notice_details(rows)
    return record


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _notice_details(notices: list[RectificationNotice]) -> list[dict]:
    """Each notice with everything that happened to it: its findings, the history (who, when,
    from, to, why), the operator's answers and their reviews, and the follow-ups."""
    from app.services.notices import STATUS_LABELS

    people = {
        user_id
        for n in notices
        for user_id in (
            [e.actor_id for e in n.history]
            + [r.author_id for r in n.responses]
            + [r.reviewer_id for r in n.responses]
            + [x.recorded_by_id for x in n.follow_ups]
        )
        if user_id is not None
    }
    names = dict(
        db.session.execute(select(User.id, User.display_name).where(User.id.in_(people))).all()
        if people
        else []
    )

    def who(user_id: int | None) -> str:
        return "系统" if user_id is None else names.get(user_id, "—")

    return [
        {
            "id": n.id,
            "number": n.number,
            "status": n.status.value,
            "status_label": STATUS_LABELS[n.status],
            "deadline": n.deadline.isoformat() if n.deadline else None,
            "issued_at": _iso(n.issued_at),
            "closed_at": _iso(n.closed_at),
            "onsite_required": n.onsite_required,
            "findings": [
                {
                    "id": f.id,
                    "category": f.category.value,
                    "severity": f.severity.value,
                    "description": f.description,
                    "area_id": f.area_id,
                    "recorded_at": _iso(f.recorded_at),
                    "snapshot_ids": [s.id for s in f.snapshots],
                }
                for f in n.findings
            ],
            "history": [
                {
                    "actor_id": e.actor_id,
                    "actor": who(e.actor_id),
                    "at": _iso(e.at),
                    "from_status": e.from_status.value if e.from_status else None,
                    "to_status": e.to_status.value,
                    "reason": e.reason,
                }
                for e in n.history
            ],
            "responses": [
                {
                    "round": r.round,
                    "author": who(r.author_id),
                    "text": r.text,
                    "submitted_at": _iso(r.submitted_at),
                    "photo_ids": [a.id for a in r.photos],
                    "reviewed_at": _iso(r.reviewed_at),
                    "reviewer": who(r.reviewer_id) if r.reviewer_id else None,
                    "accepted": r.accepted,
                    "review_note": r.review_note,
                    "review_mode": r.review_mode.value if r.review_mode else None,
                    "review_snapshot_id": r.review_snapshot_id,
                }
                for r in n.responses
            ],
            "follow_ups": [
                {
                    "kind": x.kind.value,
                    "happened_at": _iso(x.happened_at),
                    "contact": x.contact,
                    "outcome": x.outcome,
                    "recorded_by": who(x.recorded_by_id),
                }
                for x in n.follow_ups
            ],
        }
        for n in notices
    ]
