"""Parents' concerns (家长反映): submitted → accepted → resolved, or submitted → dismissed
(DESIGN.md). A parent submits about a centre they are linked to; inspectors of the centre's
jurisdiction triage. Clocks: decide within 7 working days, resolve within 15, on the statutory
calendar; overdue is computed from the dates whenever it is asked (no job moves anything).

Who learns who reported: the parent always sees their own concerns; inspectors see the reporter
(they must be able to follow up); the operator sees the reporter's name only when the parent did
not ask to stay anonymous ("一位家长" otherwise); group chats and the realtime events to staff
rooms never carry the reporter.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import selectinload

from app.errors import Conflict, Forbidden, NotFound, RateLimited, Unprocessable
from app.extensions import db
from app.models import (
    Attachment,
    Concern,
    ConcernEvent,
    ConcernStatus,
    Finding,
    KitchenArea,
    NoticeStatus,
    RectificationNotice,
    Role,
    User,
    utcnow,
)
from app.services import calendar, outbox, uploads
from app.services.base import publish, transaction
from app.services.notices import STATUS_LABELS as NOTICE_STATUS_LABELS
from app.services.notices import local_today
from app.services.parents import serialise_parent
from app.services.scope import (
    Access,
    regulators_of,
    require_centre,
    require_role,
    visible_centre_ids,
)

S = ConcernStatus
DECIDE_WORKING_DAYS = 7
RESOLVE_WORKING_DAYS = 15
MAX_PHOTOS = 9
MAX_TEXT = 2000
SOURCES = ("app", "wechat")
ANONYMOUS_REPORTER = "一位家长"

# action → (states it may start from, state it leads to, who may take it)
TRANSITIONS: dict[str, tuple[frozenset[ConcernStatus], ConcernStatus, frozenset[Role]]] = {
    "accept": (frozenset({S.SUBMITTED}), S.ACCEPTED, frozenset({Role.INSPECTOR})),
    "dismiss": (frozenset({S.SUBMITTED}), S.DISMISSED, frozenset({Role.INSPECTOR})),
    "resolve": (frozenset({S.ACCEPTED}), S.RESOLVED, frozenset({Role.INSPECTOR})),
}

STATUS_LABELS = {
    S.SUBMITTED: "已提交，待受理",
    S.ACCEPTED: "已受理，正在处理",
    S.RESOLVED: "已办结",
    S.DISMISSED: "不予受理",
}
OPEN_STATUSES = frozenset({S.SUBMITTED, S.ACCEPTED})
STAFF = (Role.OPERATOR, Role.INSPECTOR, Role.ADMIN)


@dataclass(frozen=True)
class ConcernInput:
    centre_id: int
    text: str
    client_key: str
    area_id: int | None = None
    anonymous: bool = False
    source: str = "app"


@dataclass(frozen=True)
class Submitted:
    view: dict[str, Any]
    created: bool  # False when the client key had already made this concern


@dataclass(frozen=True)
class Clocks:
    decide_overdue: bool  # still not accepted or dismissed after decide_by
    resolve_overdue: bool  # still open after resolve_by

    @property
    def overdue(self) -> bool:
        return self.decide_overdue or self.resolve_overdue


def clocks(concern: Concern, now: dt.datetime | None = None) -> Clocks:
    today = local_today(now)
    return Clocks(
        decide_overdue=concern.status is S.SUBMITTED and concern.decide_by < today,
        resolve_overdue=concern.status in OPEN_STATUSES and concern.resolve_by < today,
    )


def _overdue_clause(today: dt.date):  # type: ignore[no-untyped-def]
    """`clocks(...).overdue` as SQL, for listing."""
    return or_(
        and_(Concern.status == S.SUBMITTED, Concern.decide_by < today),
        and_(Concern.status.in_(OPEN_STATUSES), Concern.resolve_by < today),
    )


# --- what each side sees -------------------------------------------------------------------


def _common(concern: Concern, now: dt.datetime | None) -> dict[str, Any]:
    clock = clocks(concern, now)
    return {
        "id": concern.id,
        "centre_id": concern.centre_id,
        "centre_name": concern.centre.name,
        "area_id": concern.area_id,
        "area_name": concern.area.name if concern.area else None,
        "text": concern.text,
        "anonymous": concern.anonymous,
        "source": concern.source,
        "status": concern.status.value,
        "status_label": STATUS_LABELS[concern.status],
        "submitted_at": concern.submitted_at,
        "decide_by": concern.decide_by,
        "resolve_by": concern.resolve_by,
        "deadline_provisional": concern.deadline_provisional,
        "decide_overdue": clock.decide_overdue,
        "resolve_overdue": clock.resolve_overdue,
        "overdue": clock.overdue,
        "decided_at": concern.decided_at,
        "closed_at": concern.closed_at,
        "answer": concern.answer,
        "photo_count": len(concern.photos),
    }


def _photos(concern: Concern) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "content_type": p.content_type, "size_bytes": p.size_bytes, "sha256": p.sha256}
        for p in concern.photos
    ]


def _notices(concern: Concern) -> list[dict[str, Any]]:
    return [
        {
            "id": n.id,
            "number": n.number,
            "status": n.status.value,
            "status_label": NOTICE_STATUS_LABELS[n.status],
        }
        for n in concern.notices
    ]


def parent_view(
    concern: Concern, now: dt.datetime | None = None, history: bool = True
) -> dict[str, Any]:
    """The parent's own concern: status, clocks, the answer, what it led to. Never who in the
    bureau handled it."""
    view = _common(concern, now)
    view["photos"] = _photos(concern)
    view["notices"] = _notices(concern)
    if history:
        view["history"] = [
            {
                "status": e.to_status.value,
                "status_label": STATUS_LABELS[e.to_status],
                "at": e.at,
                "reason": e.reason,
            }
            for e in concern.history
        ]
    return view


def staff_view(
    concern: Concern, viewer: User, now: dt.datetime | None = None, history: bool = True
) -> dict[str, Any]:
    """A concern as the operator or an inspector sees it. The operator gets no ids of people
    at all, and for an anonymous concern not even a name."""
    view = _common(concern, now)
    parent = concern.parent
    if viewer.role is Role.OPERATOR:
        view["reporter"] = {
            "id": None,
            "name": ANONYMOUS_REPORTER if concern.anonymous else parent.display_name,
            "phone": None,
        }
    else:
        view["reporter"] = {"id": parent.id, "name": parent.display_name, "phone": parent.phone}
        view["assignee"] = (
            {"id": concern.assignee.id, "name": concern.assignee.display_name}
            if concern.assignee
            else None
        )
        view["photos"] = _photos(concern)
        view["finding_ids"] = [f.id for f in concern.findings]
        view["notices"] = _notices(concern)
    if history:
        view["history"] = [
            {
                "actor_id": None if viewer.role is Role.OPERATOR else e.actor_id,
                "from_status": e.from_status.value if e.from_status else None,
                "to_status": e.to_status.value,
                "status_label": STATUS_LABELS[e.to_status],
                "at": e.at,
                "reason": e.reason,
            }
            for e in concern.history
        ]
    return view


# --- reading -------------------------------------------------------------------------------


def _loaded():  # type: ignore[no-untyped-def]
    return select(Concern).options(
        selectinload(Concern.centre),
        selectinload(Concern.area),
        selectinload(Concern.parent),
        selectinload(Concern.assignee),
        selectinload(Concern.photos),
        selectinload(Concern.notices),
        selectinload(Concern.findings),
    )


def _own(parent: User, concern_id: int) -> Concern:
    concern = db.session.get(Concern, concern_id)
    # Another parent's concern does not exist as far as this parent can tell.
    if concern is None or concern.parent_id != parent.id:
        raise NotFound("找不到该反映")
    return concern


def list_for_parent(parent: User, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    require_role(parent, Role.PARENT)
    query = (
        _loaded()
        .where(Concern.parent_id == parent.id)
        .order_by(Concern.submitted_at.desc(), Concern.id.desc())
    )
    return [parent_view(c, now, history=False) for c in db.session.scalars(query)]


def get_for_parent(parent: User, concern_id: int, now: dt.datetime | None = None) -> dict:
    require_role(parent, Role.PARENT)
    return parent_view(_own(parent, concern_id), now)


def _readable(user: User, concern_id: int) -> Concern:
    require_role(user, *STAFF)
    concern = db.session.get(Concern, concern_id)
    if concern is None:
        raise NotFound("找不到该反映")
    require_centre(user, concern.centre_id, Access.READ)
    return concern


def get_for_staff(user: User, concern_id: int, now: dt.datetime | None = None) -> dict:
    return staff_view(_readable(user, concern_id), user, now)


def list_for_staff(
    user: User,
    centre_id: int | None = None,
    status: ConcernStatus | None = None,
    overdue: bool = False,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Operators: their centre's concerns. Inspectors: their jurisdiction's. Open ones first,
    nearest clock first; `overdue` keeps only those past a clock."""
    require_role(user, *STAFF)
    query = _loaded()
    visible = visible_centre_ids(user)
    if visible is not None:
        query = query.where(Concern.centre_id.in_(visible))
    if centre_id is not None:
        require_centre(user, centre_id, Access.READ)
        query = query.where(Concern.centre_id == centre_id)
    if status is not None:
        query = query.where(Concern.status == status)
    if overdue:
        query = query.where(_overdue_clause(local_today(now)))
    is_closed = Concern.status.in_([S.RESOLVED, S.DISMISSED])
    query = query.order_by(is_closed, Concern.decide_by, Concern.id.desc())
    return [staff_view(c, user, now, history=False) for c in db.session.scalars(query)]


CLOCK_LABELS = {"decide": "受理期限", "resolve": "办结期限"}


def on_the_clock(user: User, limit: int = 10, now: dt.datetime | None = None) -> dict[str, Any]:
    """The open concerns of the user's scope against the clock that runs now (deciding while
    submitted, resolving once accepted): how many, how many are past a clock, and the `limit`
    nearest to their deadline (overdue ones first, as their deadline has passed). For the
    dashboard: no reporter, no photos."""
    require_role(user, Role.INSPECTOR, Role.ADMIN)
    today = local_today(now)
    scope = Concern.status.in_(OPEN_STATUSES)
    visible = visible_centre_ids(user)
    if visible is not None:
        scope = and_(scope, Concern.centre_id.in_(visible))
    open_count, overdue_count = db.session.execute(
        select(
            func.count(),
            func.count(case((_overdue_clause(today), 1))),
        ).where(scope)
    ).one()
    running_due = case((Concern.status == S.SUBMITTED, Concern.decide_by), else_=Concern.resolve_by)
    rows = db.session.scalars(
        select(Concern)
        .options(selectinload(Concern.centre), selectinload(Concern.area))
        .where(scope)
        .order_by(running_due, Concern.id)
        .limit(limit)
    )
    items = []
    for concern in rows:
        clock = "decide" if concern.status is S.SUBMITTED else "resolve"
        state = clocks(concern, now)
        items.append(
            {
                "id": concern.id,
                "centre_id": concern.centre_id,
                "centre_name": concern.centre.name,
                "area_name": concern.area.name if concern.area else None,
                "text": concern.text,
                "status": concern.status.value,
                "status_label": STATUS_LABELS[concern.status],
                "submitted_at": concern.submitted_at,
                "clock": clock,
                "clock_label": CLOCK_LABELS[clock],
                "due": concern.decide_by if clock == "decide" else concern.resolve_by,
                "deadline_provisional": concern.deadline_provisional,
                "overdue": state.overdue,
            }
        )
    return {"open": open_count, "overdue": overdue_count, "items": items}


def photo(user: User, concern_id: int, attachment_id: int) -> Attachment:
    """One photo of a concern: for the parent who sent it and the regulators. The operator sees
    how many there are, not the pictures (they could tell who took them)."""
    if user.role is Role.PARENT:
        concern = _own(user, concern_id)
    else:
        require_role(user, Role.INSPECTOR, Role.ADMIN)
        concern = _readable(user, concern_id)
    found = next((p for p in concern.photos if p.id == attachment_id), None)
    if found is None:
        raise NotFound("找不到该照片")
    return found


# --- submitting ----------------------------------------------------------------------------


def _by_client_key(parent_id: int, client_key: str) -> Concern | None:
    return db.session.scalar(
        select(Concern).where(Concern.parent_id == parent_id, Concern.client_key == client_key)
    )


def _check_rate(parent_id: int, now: dt.datetime) -> None:
    limit = current_app.config["CONCERNS_PER_HOUR"]
    hour = dt.timedelta(hours=1)
    recent = list(
        db.session.scalars(
            select(Concern.submitted_at)
            .where(Concern.parent_id == parent_id, Concern.submitted_at > now - hour)
            .order_by(Concern.submitted_at)
        )
    )
    if len(recent) >= limit:
        seconds = max(1, math.ceil((recent[len(recent) - limit] + hour - now).total_seconds()))
        raise RateLimited(
            f"一小时内最多提交 {limit} 条反映，请 {math.ceil(seconds / 60)} 分钟后再试",
            reason="concern_rate",
            retry_after=seconds,
        )


def submit(
    parent: User,
    data: ConcernInput,
    photos: list[uploads.Photo],
    now: dt.datetime | None = None,
) -> Submitted:
    """Store a concern with its photos in one transaction. The client key makes it idempotent:
    a retried submit returns the concern the first one made and creates nothing."""
    require_role(parent, Role.PARENT)
    text = data.text.strip()
    client_key = data.client_key.strip()
    if not text:
        raise Unprocessable("请填写您反映的问题", field="text")
    if len(text) > MAX_TEXT:
        raise Unprocessable(f"反映内容最多 {MAX_TEXT} 字", field="text")
    if not client_key or len(client_key) > 64:
        raise Unprocessable("缺少提交编号（client_key，1 到 64 个字符）", field="client_key")
    if data.source not in SOURCES:
        raise Unprocessable("来源无效", field="source")
    checked = uploads.check_photos(photos, MAX_PHOTOS, strip_metadata=True)
    now = now or utcnow()
    with transaction():
        serialise_parent(parent.id)
        existing = _by_client_key(parent.id, client_key)
        if existing is not None:
            return Submitted(parent_view(existing, now), created=False)
        centre = require_centre(parent, data.centre_id, Access.READ)
        if data.area_id is not None:
            area = db.session.get(KitchenArea, data.area_id)
            if area is None or area.centre_id != centre.id:
                raise Unprocessable("所选区域不属于该托管机构", field="area_id")
        _check_rate(parent.id, now)
        today = local_today(now)
        decide = calendar.add_working_days(today, DECIDE_WORKING_DAYS)
        resolve = calendar.add_working_days(today, RESOLVE_WORKING_DAYS)
        concern = Concern(
            centre_id=centre.id,
            parent_id=parent.id,
            area_id=data.area_id,
            client_key=client_key,
            text=text,
            anonymous=data.anonymous,
            source=data.source,
            submitted_at=now,
            decide_by=decide.day,
            resolve_by=resolve.day,
            deadline_provisional=decide.provisional or resolve.provisional,
        )
        db.session.add(concern)
        db.session.flush()
        for checked_photo in checked:
            db.session.add(uploads.store(checked_photo, parent.id, concern_id=concern.id))
        event = ConcernEvent(
            concern_id=concern.id,
            actor_id=parent.id,
            from_status=None,
            to_status=S.SUBMITTED,
            at=now,
        )
        db.session.add(event)
        db.session.flush()
        db.session.refresh(concern)
        _tell(concern, event, "concern.submitted", groups=True)
        view = parent_view(concern, now)
    return Submitted(view, created=True)


def add_photos(parent: User, concern_id: int, photos: list[uploads.Photo]) -> Concern:
    """More photos for the parent's own concern while it still waits to be decided (chat sends
    the text and each photo as separate messages; see app/services/chat.py)."""
    require_role(parent, Role.PARENT)
    with transaction():
        concern = _lock(concern_id)
        if concern.parent_id != parent.id:
            raise NotFound("找不到该反映")
        if concern.status is not S.SUBMITTED:
            raise Conflict("该反映已在处理，不能再补充照片", current_status=concern.status.value)
        count = len(concern.photos)
        checked = uploads.check_photos(photos, MAX_PHOTOS - count, strip_metadata=True)
        for photo in checked:
            db.session.add(uploads.store(photo, parent.id, concern_id=concern.id))
        db.session.flush()
    return concern


# --- the state machine ---------------------------------------------------------------------


def _lock(concern_id: int) -> Concern:
    """The concern, row-locked for the transition (PostgreSQL; SQLite serialises writers)."""
    concern = db.session.scalar(select(Concern).where(Concern.id == concern_id).with_for_update())
    if concern is None:
        raise NotFound("找不到该反映")
    return concern


def _check(concern: Concern, action: str, actor: User) -> ConcernStatus:
    sources, target, roles = TRANSITIONS[action]
    if actor.role not in roles:
        raise Forbidden("您的角色不能执行此操作", reason="role")
    require_centre(actor, concern.centre_id, Access.REGULATE)
    if (
        action == "resolve"
        and concern.assignee is not None
        and concern.assignee.agency_id != actor.agency_id
    ):
        raise Forbidden("该反映由其他单位受理", reason="other_agency")
    if concern.status not in sources:
        raise Conflict(
            f"该反映当前为“{STATUS_LABELS[concern.status]}”，不能执行此操作",
            current_status=concern.status.value,
        )
    return target


def _move(
    concern: Concern,
    target: ConcernStatus,
    actor: User | None,
    reason: str | None,
    now: dt.datetime,
) -> ConcernEvent:
    event = ConcernEvent(
        concern_id=concern.id,
        actor_id=actor.id if actor else None,
        from_status=concern.status,
        to_status=target,
        reason=reason,
        at=now,
    )
    concern.status = target
    db.session.add(event)
    db.session.flush()
    return event


def _tell(
    concern: Concern,
    event: ConcernEvent,
    name: str,
    *,
    groups: bool = False,
    assignee: User | None = None,
) -> None:
    """The parent is told in chat; the agency groups (on a new concern) and a colleague it was
    assigned to hear without the reporter; a realtime event follows the commit."""
    centre = concern.centre
    key = f"{name}:{concern.id}:{event.id}"
    about = {
        "concern_id": concern.id,
        "centre_id": concern.centre_id,
        "centre_name": centre.name,
        "status": concern.status.value,
        "status_label": STATUS_LABELS[concern.status],
        "decide_by": concern.decide_by.isoformat(),
        "resolve_by": concern.resolve_by.isoformat(),
        "at": event.at.isoformat(),
    }
    outbox.notify_user(
        concern.parent,
        name,
        key,
        # Their own words back (which concern this is about); never who handled it.
        {**about, "text": concern.text[:200], "answer": concern.answer, "reason": event.reason},
    )
    agencies = regulators_of(centre)
    for_staff = {
        **about,
        "area_name": concern.area.name if concern.area else None,
        "text": concern.text[:200],
        "photo_count": len(concern.photos),
    }
    if groups:
        for agency in agencies:
            outbox.notify_agency_groups(agency, name, key, for_staff)
    if assignee is not None:
        outbox.notify_user(assignee, "concern.assigned", key, for_staff)
    # parent_id addresses the parent's own room; the relay keeps it out of staff rooms.
    publish(
        name,
        **about,
        agency_ids=[a.id for a in agencies],
        parent_id=concern.parent_id,
    )


def accept(
    inspector: User,
    concern_id: int,
    assignee_id: int | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Accept for handling (受理), assigned to the inspector or a colleague of their agency."""
    now = now or utcnow()
    with transaction():
        concern = _lock(concern_id)
        target = _check(concern, "accept", inspector)
        assignee = (
            inspector
            if assignee_id is None or assignee_id == inspector.id
            else db.session.get(User, assignee_id)
        )
        if (
            assignee is None
            or assignee.role is not Role.INSPECTOR
            or not assignee.is_active
            or assignee.agency_id != inspector.agency_id
        ):
            raise Unprocessable("只能指派给本单位的监管人员", field="assignee_id")
        concern.assignee_id = assignee.id
        concern.decided_at = now
        event = _move(concern, target, inspector, note.strip() or None, now)
        db.session.expire(concern, ["assignee"])
        _tell(
            concern,
            event,
            "concern.accepted",
            assignee=assignee if assignee.id != inspector.id else None,
        )
        view = staff_view(concern, inspector, now)
    return view


def dismiss(
    inspector: User, concern_id: int, reason: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Refuse to handle (不予受理), with the reason the parent will read."""
    if not reason.strip():
        raise Unprocessable("请填写不予受理的理由（家长可见）", field="reason")
    now = now or utcnow()
    with transaction():
        concern = _lock(concern_id)
        target = _check(concern, "dismiss", inspector)
        concern.answer = reason.strip()
        concern.decided_at = concern.closed_at = now
        event = _move(concern, target, inspector, concern.answer, now)
        _tell(concern, event, "concern.dismissed")
        view = staff_view(concern, inspector, now)
    return view


def resolve(
    inspector: User,
    concern_id: int,
    answer: str,
    finding_ids: tuple[int, ...] = (),
    notice_ids: tuple[int, ...] = (),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Close an accepted concern with the explanation the parent will read, optionally linking
    the findings recorded and the notices issued about it (of the same centre)."""
    if not answer.strip():
        raise Unprocessable("请填写处理结果（家长可见）", field="answer")
    now = now or utcnow()
    with transaction():
        concern = _lock(concern_id)
        target = _check(concern, "resolve", inspector)
        findings = list(
            db.session.scalars(
                select(Finding).where(
                    Finding.id.in_(finding_ids), Finding.centre_id == concern.centre_id
                )
            )
        )
        if len(findings) != len(set(finding_ids)):
            raise Unprocessable("所选问题不属于该托管机构", field="finding_ids")
        if any(f.concern_id not in (None, concern.id) for f in findings):
            raise Unprocessable("所选问题已关联其他反映", field="finding_ids")
        notices = list(
            db.session.scalars(
                select(RectificationNotice).where(
                    RectificationNotice.id.in_(notice_ids),
                    RectificationNotice.centre_id == concern.centre_id,
                    RectificationNotice.status.not_in([NoticeStatus.DRAFT, NoticeStatus.WITHDRAWN]),
                )
            )
        )
        if len(notices) != len(set(notice_ids)):
            raise Unprocessable("所选整改通知不属于该托管机构或尚未下发", field="notice_ids")
        for finding in findings:
            finding.concern_id = concern.id
        concern.notices = notices
        concern.answer = answer.strip()
        concern.closed_at = now
        event = _move(concern, target, inspector, concern.answer, now)
        db.session.expire(concern, ["findings"])
        _tell(concern, event, "concern.resolved")
        view = staff_view(concern, inspector, now)
    return view
