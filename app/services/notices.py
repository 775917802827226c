"""Rectification notices (整改通知书): draft → issued → acknowledged → responded → verified, with
returned, overdue, escalated and withdrawn (DESIGN.md). Every transition is one call here that
checks who may make it and from which state, appends to the history, writes the outbox rows for
the people to be told and publishes an event after commit.

Who is told in chat (`_tell`): issued → the centre's operators and the agency's group robots;
acknowledged → the issuing inspector; responded → the issuer and the groups; returned and
verified → the operators and the groups; overdue and escalated → the operators, the issuer and
the groups; withdrawn → the operators and the groups, if it had reached them (issued)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.models import (
    Agency,
    Attachment,
    Finding,
    FollowUp,
    FollowUpKind,
    NoticeCounter,
    NoticeEvent,
    NoticeResponse,
    NoticeStatus,
    RectificationNotice,
    ReviewMode,
    Role,
    Snapshot,
    User,
    utcnow,
)
from app.services import calendar, outbox, uploads
from app.services.base import publish, transaction
from app.services.scope import Access, require_centre, require_role

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_RESPONSE_PHOTOS = 9
S = NoticeStatus

# action → (states it may start from, state it leads to, who may take it)
TRANSITIONS: dict[str, tuple[frozenset[NoticeStatus], NoticeStatus, frozenset[Role]]] = {
    "issue": (frozenset({S.DRAFT}), S.ISSUED, frozenset({Role.INSPECTOR})),
    "withdraw": (frozenset({S.DRAFT, S.ISSUED}), S.WITHDRAWN, frozenset({Role.INSPECTOR})),
    "acknowledge": (frozenset({S.ISSUED}), S.ACKNOWLEDGED, frozenset({Role.OPERATOR})),
    "respond": (
        frozenset({S.ISSUED, S.ACKNOWLEDGED, S.RETURNED, S.OVERDUE, S.ESCALATED}),
        S.RESPONDED,
        frozenset({Role.OPERATOR}),
    ),
    "return": (frozenset({S.RESPONDED}), S.RETURNED, frozenset({Role.INSPECTOR})),
    "verify": (frozenset({S.RESPONDED}), S.VERIFIED, frozenset({Role.INSPECTOR})),
    "mark_overdue": (frozenset({S.ISSUED, S.ACKNOWLEDGED, S.RETURNED}), S.OVERDUE, frozenset()),
    "escalate": (frozenset({S.OVERDUE}), S.ESCALATED, frozenset({Role.INSPECTOR})),
}

STATUS_LABELS = {
    S.DRAFT: "草稿",
    S.ISSUED: "已下发",
    S.ACKNOWLEDGED: "已签收",
    S.RESPONDED: "已回复待复查",
    S.RETURNED: "已退回重新整改",
    S.VERIFIED: "复查通过",
    S.OVERDUE: "已逾期",
    S.ESCALATED: "逾期已上报",
    S.WITHDRAWN: "已撤回",
}
OPEN_STATUSES = frozenset(
    {S.ISSUED, S.ACKNOWLEDGED, S.RESPONDED, S.RETURNED, S.OVERDUE, S.ESCALATED}
)


@dataclass(frozen=True)
class DraftInput:
    centre_id: int
    finding_ids: tuple[int, ...]
    requirements: str
    legal_basis: str = ""
    deadline: dt.date | None = None
    working_days: int | None = None


@dataclass
class NoticeDeadline:
    day: dt.date
    provisional: bool = False


@dataclass(frozen=True)
class ReviewInput:
    mode: ReviewMode
    note: str = ""
    snapshot_id: int | None = None


@dataclass(frozen=True)
class FollowUpInput:
    kind: FollowUpKind
    happened_at: dt.datetime
    contact: str
    outcome: str


@dataclass(frozen=True)
class Transitioned:
    notice: RectificationNotice
    extra: dict[str, Any] = field(default_factory=dict)


def local_today(now: dt.datetime | None = None) -> dt.date:
    return (now or utcnow()).astimezone(LOCAL_TZ).date()


def format_number(agency: Agency, year: int, seq: int) -> str:
    return f"{agency.notice_prefix}〔{year}〕{seq}号"


# --- reading -------------------------------------------------------------------------------


def get_notice(user: User, notice_id: int, access: Access = Access.READ) -> RectificationNotice:
    notice = db.session.get(RectificationNotice, notice_id)
    if notice is None:
        raise NotFound("找不到该整改通知")
    require_centre(user, notice.centre_id, access)
    if user.role is Role.PARENT:
        raise Forbidden("家长不能查看整改通知详情", reason="role")
    if user.role is Role.OPERATOR and not served(notice):
        raise NotFound("找不到该整改通知")
    return notice


def served(notice: RectificationNotice) -> bool:
    """Whether the operator was ever given the notice: a draft, or a draft withdrawn before
    it was issued, does not exist for them."""
    return notice.issued_at is not None


def list_notices(
    user: User,
    centre_id: int | None = None,
    open_only: bool = False,
    *,
    with_findings: bool = False,
) -> list[RectificationNotice]:
    """Operators: their centre's notices once issued; inspectors: their agency's; admins: all.
    Open ones first. `with_findings` loads each notice's findings and their snapshots with
    the list (two queries for the whole list) for a view that shows them: touched one by
    one they would cost two queries per notice."""
    query = select(RectificationNotice)
    if user.role is Role.OPERATOR:
        query = query.where(
            RectificationNotice.centre_id == user.centre_id,
            RectificationNotice.issued_at.is_not(None),
        )
    elif user.role is Role.INSPECTOR:
        query = query.where(RectificationNotice.agency_id == user.agency_id)
    elif user.role is not Role.ADMIN:
        raise Forbidden("您的角色不能查看整改通知", reason="role")
    if centre_id is not None:
        require_centre(user, centre_id, Access.READ)
        query = query.where(RectificationNotice.centre_id == centre_id)
    if open_only:
        query = query.where(RectificationNotice.status.in_(OPEN_STATUSES))
    # Open ones first, nearest deadline first.
    is_closed = RectificationNotice.status.in_([S.VERIFIED, S.WITHDRAWN, S.DRAFT])
    query = query.order_by(
        is_closed, RectificationNotice.deadline.nulls_last(), RectificationNotice.id.desc()
    )
    if with_findings:
        findings = selectinload(RectificationNotice.findings)
        query = query.options(findings.selectinload(Finding.snapshots))
    return list(db.session.scalars(query))


def response_photo(user: User, notice_id: int, attachment_id: int) -> Attachment:
    """One photo of an answer to the notice: for the operator of the centre, who sent it, and
    the regulators who review it. Parents never see answers (get_notice refuses them)."""
    require_role(user, Role.OPERATOR, Role.INSPECTOR, Role.ADMIN)
    notice = get_notice(user, notice_id)
    found = db.session.scalar(
        select(Attachment)
        .join(NoticeResponse, Attachment.notice_response_id == NoticeResponse.id)
        .where(Attachment.id == attachment_id, NoticeResponse.notice_id == notice.id)
    )
    if found is None:
        raise NotFound("找不到该照片")
    return found


# --- the state machine ---------------------------------------------------------------------


def _require_actor(notice: RectificationNotice, actor: User, roles: frozenset[Role]) -> None:
    """Who may act on this notice at all: the role, the centre in scope, the issuing agency.
    A notice never issued does not exist for the operator (as when reading it)."""
    if actor.role not in roles:
        raise Forbidden("您的角色不能执行此操作", reason="role")
    if actor.role is Role.INSPECTOR:
        require_centre(actor, notice.centre_id, Access.REGULATE)
        if actor.agency_id != notice.agency_id:
            raise Forbidden("该整改通知由其他单位下发", reason="other_agency")
    elif actor.role is Role.OPERATOR:
        require_centre(actor, notice.centre_id, Access.MANAGE)
        if not served(notice):
            raise NotFound("找不到该整改通知")


def _check(notice: RectificationNotice, action: str, actor: User | None) -> NoticeStatus:
    sources, target, roles = TRANSITIONS[action]
    if actor is not None:
        _require_actor(notice, actor, roles)
    if notice.status not in sources:
        raise Conflict(
            f"整改通知当前为“{STATUS_LABELS[notice.status]}”，不能执行此操作",
            current_status=notice.status.value,
        )
    return target


def _move(
    notice: RectificationNotice, target: NoticeStatus, actor: User | None, reason: str | None
) -> NoticeEvent:
    event = NoticeEvent(
        notice_id=notice.id,
        actor_id=actor.id if actor else None,
        from_status=notice.status,
        to_status=target,
        reason=reason,
    )
    notice.status = target
    db.session.add(event)
    db.session.flush()
    return event


def _tell(
    notice: RectificationNotice,
    event: NoticeEvent,
    name: str,
    *,
    operators: bool = False,
    issuer: bool = False,
    groups: bool = False,
    supervisors: bool = False,
) -> None:
    """Outbox rows for the people concerned, and a realtime event after commit.

    Supervisors are told in WeCom when they are bound there; the others are named (@) in the
    agency's group-robot message — or, when the agency has no group robot, reached on their own
    chat channel if they have one."""
    payload = {
        "notice_id": notice.id,
        "number": notice.number,
        "centre_id": notice.centre_id,
        "status": notice.status.value,
        "status_label": STATUS_LABELS[notice.status],
        "deadline": notice.deadline.isoformat() if notice.deadline else None,
        "reason": event.reason,
    }
    key = f"{name}:{notice.id}:{event.id}"
    # Regulators read the same event with their own next step (bots/render.py).
    for_regulators = {**payload, "audience": "regulator"}
    if operators:
        for user in outbox.operators_of(notice.centre_id):
            outbox.notify_user(user, name, key, payload)
    if issuer:
        issuer_user = db.session.get(User, notice.issuer_id)
        if issuer_user is not None:
            outbox.notify_user(issuer_user, name, key, for_regulators)
    to_mention: list[User] = []
    if supervisors:
        for supervisor in outbox.supervisors_of(notice.agency_id):
            if supervisor.wecom_userid:
                outbox.notify_user(supervisor, name, key, for_regulators)
            else:
                to_mention.append(supervisor)
    group_rows = []
    if groups:
        agency = db.session.get(Agency, notice.agency_id)
        if agency is not None:
            group_payload = dict(payload)
            if to_mention:
                group_payload["mention"] = [
                    {"name": u.display_name, "mobile": u.phone} for u in to_mention
                ]
            group_rows = outbox.notify_agency_groups(agency, name, key, group_payload)
    if not group_rows:
        for supervisor in to_mention:
            outbox.notify_user(supervisor, name, key, for_regulators)
    publish(name, agency_id=notice.agency_id, **payload)


def _lock(notice_id: int) -> RectificationNotice:
    """The notice, row-locked for the transition (PostgreSQL; SQLite serialises writers)."""
    notice = db.session.scalar(
        select(RectificationNotice).where(RectificationNotice.id == notice_id).with_for_update()
    )
    if notice is None:
        raise NotFound("找不到该整改通知")
    return notice


def _resolve_deadline(
    deadline: dt.date | None, working_days: int | None, today: dt.date
) -> NoticeDeadline:
    if (deadline is None) == (working_days is None):
        raise Unprocessable("请填写整改期限：具体日期或工作日数（二选一）", field="deadline")
    if working_days is not None:
        result = calendar.add_working_days(today, working_days)
        return NoticeDeadline(result.day, result.provisional)
    assert deadline is not None
    if deadline < today:
        raise Unprocessable("整改期限不能早于今天", field="deadline")
    return NoticeDeadline(deadline)


def create_draft(inspector: User, data: DraftInput) -> RectificationNotice:
    if inspector.role is not Role.INSPECTOR:
        raise Forbidden("只有监管人员可以起草整改通知", reason="role")
    if not data.requirements.strip():
        raise Unprocessable("请填写整改要求", field="requirements")
    if not data.finding_ids:
        raise Unprocessable("请至少选择一个发现的问题", field="finding_ids")
    today = local_today()
    _resolve_deadline(data.deadline, data.working_days, today)  # validate early
    with transaction():
        centre = require_centre(inspector, data.centre_id, Access.REGULATE)
        findings = list(
            db.session.scalars(
                select(Finding).where(
                    Finding.id.in_(data.finding_ids), Finding.centre_id == centre.id
                )
            )
        )
        if len(findings) != len(set(data.finding_ids)):
            raise Unprocessable("所选问题不属于此托管机构", field="finding_ids")
        notice = RectificationNotice(
            agency_id=inspector.agency_id,
            centre_id=centre.id,
            issuer_id=inspector.id,
            requirements=data.requirements.strip(),
            legal_basis=data.legal_basis.strip(),
            deadline=data.deadline,
            deadline_working_days=data.working_days,
        )
        notice.findings = findings
        db.session.add(notice)
        db.session.flush()
        db.session.add(
            NoticeEvent(
                notice_id=notice.id,
                actor_id=inspector.id,
                from_status=None,
                to_status=S.DRAFT,
                reason=None,
            )
        )
    return notice


def _next_number(agency_id: int, year: int) -> int:
    """Gapless per agency and year: the counter row is created if missing, then row-locked, and
    its increment commits or rolls back with the issuance itself."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(
        insert(NoticeCounter)
        .values(agency_id=agency_id, year=year, last_seq=0)
        .on_conflict_do_nothing(index_elements=["agency_id", "year"])
    )
    counter = db.session.scalar(
        select(NoticeCounter)
        .where(NoticeCounter.agency_id == agency_id, NoticeCounter.year == year)
        .with_for_update()
    )
    assert counter is not None
    counter.last_seq += 1
    return counter.last_seq


def issue(inspector: User, notice_id: int) -> RectificationNotice:
    with transaction():
        notice = _lock(notice_id)
        target = _check(notice, "issue", inspector)
        now = utcnow()
        today = local_today(now)
        deadline = _resolve_deadline(
            notice.deadline if notice.deadline_working_days is None else None,
            notice.deadline_working_days,
            today,
        )
        agency = db.session.get(Agency, notice.agency_id)
        assert agency is not None
        notice.year = today.year
        notice.seq = _next_number(agency.id, today.year)
        notice.number = format_number(agency, today.year, notice.seq)
        notice.deadline = deadline.day
        notice.deadline_provisional = deadline.provisional
        notice.issued_at = notice.served_at = now
        event = _move(notice, target, inspector, None)
        _tell(notice, event, "notice.issued", operators=True, groups=True)
    return notice


def withdraw(inspector: User, notice_id: int, reason: str) -> RectificationNotice:
    if not reason.strip():
        raise Unprocessable("请填写撤回理由", field="reason")
    with transaction():
        notice = _lock(notice_id)
        was_issued = notice.status is S.ISSUED
        target = _check(notice, "withdraw", inspector)
        notice.closed_at = utcnow()
        event = _move(notice, target, inspector, reason.strip())
        _tell(notice, event, "notice.withdrawn", operators=was_issued, groups=was_issued)
    return notice


def acknowledge(operator: User, notice_id: int) -> RectificationNotice:
    with transaction():
        notice = _lock(notice_id)
        target = _check(notice, "acknowledge", operator)
        notice.acknowledged_at = utcnow()
        event = _move(notice, target, operator, None)
        _tell(notice, event, "notice.acknowledged", issuer=True)
    return notice


def respond(
    operator: User, notice_id: int, text: str, photos: list[uploads.Photo]
) -> NoticeResponse:
    """The operator's answer; responding also acknowledges a notice not yet acknowledged."""
    if not text.strip():
        raise Unprocessable("请填写整改情况说明", field="text")
    checked = uploads.check_photos(photos, MAX_RESPONSE_PHOTOS)
    with transaction():
        notice = _lock(notice_id)
        target = _check(notice, "respond", operator)
        now = utcnow()
        notice.acknowledged_at = notice.acknowledged_at or now
        notice.responded_at = now
        last_round = (
            db.session.scalar(
                select(func.max(NoticeResponse.round)).where(NoticeResponse.notice_id == notice.id)
            )
            or 0
        )
        response = NoticeResponse(
            notice_id=notice.id, round=last_round + 1, author_id=operator.id, text=text.strip()
        )
        db.session.add(response)
        db.session.flush()
        for photo in checked:
            db.session.add(uploads.store(photo, operator.id, notice_response_id=response.id))
        event = _move(notice, target, operator, None)
        _tell(notice, event, "notice.responded", issuer=True, groups=True)
    return response


def add_response_photos(
    operator: User, response_id: int, photos: list[uploads.Photo]
) -> NoticeResponse:
    """More photos for an answer still awaiting review (chat sends text and photos as separate
    messages; see app/services/chat.py). Refused once the answer has been reviewed."""
    with transaction():
        response = db.session.get(NoticeResponse, response_id)
        if response is None:
            raise NotFound("找不到该整改回复")
        notice = _lock(response.notice_id)
        if operator.role is not Role.OPERATOR or response.author_id != operator.id:
            raise Forbidden("只能为自己的整改回复补充照片", reason="not_author")
        require_centre(operator, notice.centre_id, Access.MANAGE)
        if response.reviewed_at is not None or notice.status is not S.RESPONDED:
            raise Conflict("该整改回复已复查，不能再补充照片", current_status=notice.status.value)
        count = len(response.photos)
        checked = uploads.check_photos(photos, MAX_RESPONSE_PHOTOS - count)
        for photo in checked:
            db.session.add(uploads.store(photo, operator.id, notice_response_id=response.id))
        db.session.flush()
        publish(
            "notice.response_photos_added",
            notice_id=notice.id,
            centre_id=notice.centre_id,
            agency_id=notice.agency_id,
            response_id=response.id,
            photos=count + len(checked),
        )
    return response


def _review(
    inspector: User, notice_id: int, action: str, review: ReviewInput, reason: str | None
) -> RectificationNotice:
    with transaction():
        notice = _lock(notice_id)
        target = _check(notice, action, inspector)
        # Escalated: closing it needs an inspector on site; sending the answer back (seen to
        # be wrong on video) does not.
        if notice.onsite_required and action == "verify" and review.mode is not ReviewMode.ON_SITE:
            raise Unprocessable(
                "该整改通知逾期未整改已上报，须现场复查，不能通过视频复查", field="mode"
            )
        if review.snapshot_id is not None:
            snapshot = db.session.get(Snapshot, review.snapshot_id)
            if (
                snapshot is None
                or snapshot.camera is None
                or snapshot.camera.centre_id != notice.centre_id
            ):
                raise Unprocessable("抓拍照片不属于此托管机构", field="snapshot_id")
        response = db.session.scalar(
            select(NoticeResponse)
            .where(NoticeResponse.notice_id == notice.id)
            .order_by(NoticeResponse.round.desc())
            .limit(1)
        )
        now = utcnow()
        if response is not None:
            response.reviewed_at, response.reviewer_id = now, inspector.id
            response.accepted = action == "verify"
            response.review_note = (reason or review.note).strip() or None
            response.review_mode = review.mode
            response.review_snapshot_id = review.snapshot_id
        notice.review_mode = review.mode
        notice.review_snapshot_id = review.snapshot_id
        if action == "verify":
            notice.closed_at = now
        event = _move(notice, target, inspector, reason)
        # Both outcomes reach the operator and the agency's groups (a returned answer is as
        # much the regulators' business as a verified one).
        _tell(
            notice,
            event,
            f"notice.{'verified' if action == 'verify' else 'returned'}",
            operators=True,
            groups=True,
        )
    return notice


def verify(inspector: User, notice_id: int, review: ReviewInput) -> RectificationNotice:
    return _review(inspector, notice_id, "verify", review, review.note.strip() or None)


def return_for_rework(
    inspector: User, notice_id: int, review: ReviewInput, reason: str
) -> RectificationNotice:
    if not reason.strip():
        raise Unprocessable("请填写退回理由", field="reason")
    return _review(inspector, notice_id, "return", review, reason.strip())


def add_follow_up(inspector: User, notice_id: int, data: FollowUpInput) -> FollowUp:
    if not data.contact.strip() or not data.outcome.strip():
        raise Unprocessable("请填写联系对象和跟进结果", field="outcome")
    if data.happened_at > utcnow() + dt.timedelta(minutes=5):
        raise Unprocessable("跟进时间不能晚于现在", field="happened_at")
    with transaction():
        notice = _lock(notice_id)
        _require_actor(notice, inspector, frozenset({Role.INSPECTOR}))
        if notice.status in (S.DRAFT, S.WITHDRAWN):
            raise Conflict(
                f"整改通知当前为“{STATUS_LABELS[notice.status]}”，尚未下发或已撤回，不能记录跟进",
                current_status=notice.status.value,
            )
        follow_up = FollowUp(
            notice_id=notice.id,
            kind=data.kind,
            happened_at=data.happened_at,
            contact=data.contact.strip(),
            outcome=data.outcome.strip(),
            recorded_by_id=inspector.id,
        )
        db.session.add(follow_up)
        db.session.flush()
        publish(
            "notice.follow_up_logged",
            notice_id=notice.id,
            centre_id=notice.centre_id,
            agency_id=notice.agency_id,
            follow_up_id=follow_up.id,
        )
    return follow_up


# --- clocks --------------------------------------------------------------------------------


def mark_overdue(now: dt.datetime | None = None) -> list[int]:
    """Move every open notice whose deadline has passed to overdue. Idempotent: a second run
    (or a concurrent one) finds nothing left to move."""
    today = local_today(now)
    moved = []
    candidates = list(
        db.session.scalars(
            select(RectificationNotice.id).where(
                RectificationNotice.status.in_(TRANSITIONS["mark_overdue"][0]),
                RectificationNotice.deadline < today,
            )
        )
    )
    db.session.rollback()
    for notice_id in candidates:
        with transaction():
            notice = _lock(notice_id)
            if (
                notice.status not in TRANSITIONS["mark_overdue"][0]
                or notice.deadline is None
                or notice.deadline >= today
            ):
                continue  # someone else moved it meanwhile
            event = _move(notice, S.OVERDUE, None, f"已超过整改期限 {notice.deadline.isoformat()}")
            _tell(notice, event, "notice.overdue", operators=True, issuer=True, groups=True)
            moved.append(notice.id)
    return moved


def escalate_overdue(now: dt.datetime | None = None) -> list[int]:
    """Escalate notices overdue for longer than the grace period: an on-site visit is required
    from then on (`onsite_required`), and the operators, the issuer, the agency's groups and its
    supervisors are told. Idempotent like `mark_overdue`."""
    today = local_today(now)
    grace = dt.timedelta(days=current_app.config["ESCALATION_GRACE_DAYS"])
    moved = []
    candidates = list(
        db.session.scalars(
            select(RectificationNotice.id).where(
                RectificationNotice.status == S.OVERDUE,
                RectificationNotice.deadline < today - grace,
            )
        )
    )
    db.session.rollback()
    for notice_id in candidates:
        with transaction():
            notice = _lock(notice_id)
            if (
                notice.status is not S.OVERDUE
                or notice.deadline is None
                or notice.deadline >= today - grace
            ):
                continue
            notice.onsite_required = True
            event = _move(notice, S.ESCALATED, None, "逾期未整改，已上报并需现场核查")
            _tell(
                notice,
                event,
                "notice.escalated",
                operators=True,
                issuer=True,
                groups=True,
                supervisors=True,
            )
            moved.append(notice.id)
    return moved
