"""Parents and the centres they follow: invite codes (issued by the centre's operator or an
admin), binding with a code, unlinking, and the centre page a parent opens.

A parent is known by their WeChat openid and nothing more, unless they give a mobile number
(optional) so that the inspectors handling their concerns can call them back. Guessing codes is
stopped by counting failed binds over a rolling window, per parent and per address, in the
database (so every web process sees the same count). A code's uses are claimed with one
conditional UPDATE, so parallel binds never take more than its limit.
"""

from __future__ import annotations

import ipaddress
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.errors import Conflict, DomainError, NotFound, RateLimited, Unprocessable
from app.extensions import db
from app.models import (
    BindFailure,
    Camera,
    CameraStatus,
    InviteCode,
    KitchenArea,
    ParentLink,
    Role,
    Snapshot,
    User,
    utcnow,
)
from app.services import audit, watch
from app.services import centres as centre_service
from app.services.base import publish, transaction
from app.services.centres import CENTRE_TZ
from app.services.scope import Access, require_centre, require_role

# No 0/O or 1/I/L: codes are read aloud, printed on letters and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
MAX_CODE_LENGTH = 16
MAX_CODE_USES = 1000
MAX_CODE_TTL_DAYS = 365
SNAPSHOTS_ON_PAGE = 50

CODE_STATES = {
    "active": "有效",
    "expired": "已过期",
    "used_up": "已用完",
    "revoked": "已作废",
}
CAMERA_STATUS_LABELS = {
    CameraStatus.UNKNOWN: "未知",
    CameraStatus.ONLINE: "在线",
    CameraStatus.OFFLINE: "离线",
    CameraStatus.STALLED: "画面中断",
    CameraStatus.TAMPERED: "画面异常",
}


@dataclass(frozen=True)
class Binding:
    link: ParentLink
    created: bool  # False when the parent was already linked to the centre


# --- invite codes --------------------------------------------------------------------------


def code_state(code: InviteCode, now: datetime | None = None) -> str:
    if code.revoked_at is not None:
        return "revoked"
    if code.expires_at <= (now or utcnow()):
        return "expired"
    if code.uses >= code.max_uses:
        return "used_up"
    return "active"


def qr_payload(code: InviteCode) -> str:
    """What the centre's QR code encodes: the bind page with the code filled in."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/bind?code={code.code}"


def normalise_code(raw: str) -> str:
    """Codes are typed loosely: spaces and dashes are dropped and letters upper-cased."""
    return "".join(ch for ch in raw if not ch.isspace() and ch != "-").upper()


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _require_code_manager(user: User) -> None:
    # Technicians also MANAGE centres they install, but only the operator and admins invite.
    require_role(user, Role.OPERATOR, Role.ADMIN)


def issue_code(
    user: User,
    centre_id: int,
    max_uses: int = 50,
    ttl_days: int | None = None,
    now: datetime | None = None,
) -> InviteCode:
    """A new invite code for the centre (its operator or an admin)."""
    _require_code_manager(user)
    ttl_days = ttl_days or current_app.config["INVITE_CODE_TTL_DAYS"]
    if not 1 <= max_uses <= MAX_CODE_USES:
        raise Unprocessable(f"可使用次数应在 1 到 {MAX_CODE_USES} 之间", field="max_uses")
    if not 1 <= ttl_days <= MAX_CODE_TTL_DAYS:
        raise Unprocessable(f"有效天数应在 1 到 {MAX_CODE_TTL_DAYS} 之间", field="expires_in_days")
    now = now or utcnow()
    with transaction():
        centre = require_centre(user, centre_id, Access.MANAGE)
        for _ in range(5):
            row = InviteCode(
                centre_id=centre.id,
                code=_new_code(),
                created_by_id=user.id,
                created_at=now,
                expires_at=now + timedelta(days=ttl_days),
                max_uses=max_uses,
            )
            try:
                # 31^8 codes make a clash rare; a savepoint lets the next candidate try.
                with db.session.begin_nested():
                    db.session.add(row)
                    db.session.flush()
            except IntegrityError:
                continue
            break
        else:  # pragma: no cover - five clashes in a row
            raise Conflict("邀请码生成失败，请重试")
        audit.record(
            "invite_code.issued",
            actor_id=user.id,
            object_type="invite_code",
            object_id=row.id,
            centre_id=centre.id,
            max_uses=max_uses,
            ttl_days=ttl_days,
        )
    return row


def list_codes(user: User, centre_id: int) -> list[InviteCode]:
    _require_code_manager(user)
    centre = require_centre(user, centre_id, Access.MANAGE)
    return list(
        db.session.scalars(
            select(InviteCode)
            .where(InviteCode.centre_id == centre.id)
            .order_by(InviteCode.id.desc())
        )
    )


def revoke_code(user: User, code_id: int) -> InviteCode:
    """Stop a code working (links already made stay). Revoking twice changes nothing."""
    _require_code_manager(user)
    with transaction():
        row = db.session.get(InviteCode, code_id)
        if row is None:
            raise NotFound("找不到该邀请码")
        require_centre(user, row.centre_id, Access.MANAGE)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(
                "invite_code.revoked",
                actor_id=user.id,
                object_type="invite_code",
                object_id=row.id,
                centre_id=row.centre_id,
            )
    return row


# --- binding -------------------------------------------------------------------------------


def serialise_parent(parent_id: int) -> None:
    """Row-lock the parent for the rest of the transaction, so one parent's binds (or submits)
    run one after another and each sees what the previous one counted (PostgreSQL; SQLite
    already serialises writers)."""
    db.session.execute(select(User.id).where(User.id == parent_id).with_for_update())


def _countable_address(ip: str | None) -> str | None:
    """The address to count failures against, or None. A loopback address is a proxy on this
    machine (nginx in the production layout), not a parent: counting it would lock everyone
    out at once. Behind a proxy elsewhere, the app must be told the real client address."""
    try:
        return None if ip is None or ipaddress.ip_address(ip).is_loopback else ip
    except ValueError:
        return None


def _lockout(parent_id: int, ip: str | None, now: datetime) -> RateLimited | None:
    """The refusal when too many binds failed within the window, else None."""
    cfg = current_app.config
    window = timedelta(seconds=cfg["BIND_FAILURE_WINDOW_S"])
    limits = [(BindFailure.parent_id == parent_id, cfg["BIND_MAX_FAILURES"])]
    if ip:
        limits.append((BindFailure.ip == ip, cfg["BIND_MAX_FAILURES_PER_IP"]))
    for condition, limit in limits:
        recent = BindFailure.failed_at > now - window
        count = db.session.scalar(select(func.count()).where(condition, recent)) or 0
        if count < limit:
            continue
        # The lock lifts once enough failures have aged out of the window to be under the limit.
        lifts_with = db.session.scalar(
            select(BindFailure.failed_at)
            .where(condition, recent)
            .order_by(BindFailure.failed_at)
            .offset(count - limit)
            .limit(1)
        )
        assert lifts_with is not None
        seconds = max(1, math.ceil((lifts_with + window - now).total_seconds()))
        return RateLimited(
            f"邀请码输错次数过多，请 {math.ceil(seconds / 60)} 分钟后再试",
            reason="bind_locked",
            retry_after=seconds,
        )
    return None


def _record_failure(parent_id: int, ip: str | None, now: datetime) -> None:
    window = timedelta(seconds=current_app.config["BIND_FAILURE_WINDOW_S"])
    # Failures older than the window no longer count: drop them as new ones arrive.
    db.session.execute(delete(BindFailure).where(BindFailure.failed_at <= now - window))
    db.session.add(BindFailure(parent_id=parent_id, ip=ip, failed_at=now))


def _unusable(code: InviteCode, now: datetime) -> DomainError | None:
    state = code_state(code, now)
    if state == "revoked":
        return Conflict("该邀请码已作废，请向托管机构索取新的邀请码", reason="revoked")
    if state == "expired":
        return Conflict("该邀请码已过期，请向托管机构索取新的邀请码", reason="expired")
    if state == "used_up":
        return Conflict("该邀请码的使用次数已满，请向托管机构索取新的邀请码", reason="used_up")
    return None


def bind(
    parent: User, raw_code: str, ip: str | None = None, now: datetime | None = None
) -> Binding:
    """Link the parent to the code's centre. Binding again to a centre already linked returns
    the link and takes no use of the code. Every failure counts towards the lockout, and while
    locked out even a correct code is refused."""
    require_role(parent, Role.PARENT)
    code = normalise_code(raw_code)
    if not code:
        raise Unprocessable("请输入邀请码", field="code")
    now = now or utcnow()
    ip = _countable_address(ip)
    failure: DomainError
    with transaction():
        serialise_parent(parent.id)
        locked = _lockout(parent.id, ip, now)
        if locked is not None:
            # Not counted again: the lock lifts on time however often it is knocked on.
            failure = locked
        else:
            row = (
                db.session.scalar(select(InviteCode).where(InviteCode.code == code))
                if len(code) <= MAX_CODE_LENGTH
                else None
            )
            if row is None:
                failure = NotFound("邀请码不存在，请核对后重新输入", reason="unknown_code")
            else:
                existing = db.session.scalar(
                    select(ParentLink).where(
                        ParentLink.parent_id == parent.id, ParentLink.centre_id == row.centre_id
                    )
                )
                if existing is not None:
                    return Binding(existing, created=False)
                unusable = _unusable(row, now)
                if unusable is None:
                    # Claim a use only while one is left: concurrent binds queue on the row and
                    # each re-checks the condition, so the limit holds.
                    claimed = db.session.execute(
                        update(InviteCode)
                        .where(
                            InviteCode.id == row.id,
                            InviteCode.uses < InviteCode.max_uses,
                            InviteCode.revoked_at.is_(None),
                            InviteCode.expires_at > now,
                        )
                        .values(uses=InviteCode.uses + 1)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if claimed == 1:
                        return Binding(_link(parent, row, now), created=True)
                    db.session.refresh(row)
                    unusable = _unusable(row, now) or Conflict(
                        "该邀请码的使用次数已满，请向托管机构索取新的邀请码", reason="used_up"
                    )
                failure = unusable
            _record_failure(parent.id, ip, now)
    # The failure (and its count) is committed; only then is the error raised.
    raise failure


def _link(parent: User, code: InviteCode, now: datetime) -> ParentLink:
    link = ParentLink(
        parent_id=parent.id, centre_id=code.centre_id, invite_code_id=code.id, linked_at=now
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "parent.linked",
        actor_id=parent.id,
        object_type="centre",
        object_id=code.centre_id,
        invite_code_id=code.id,
    )
    # Tells the parent's open app to join the centre's rooms (it reconnects).
    publish("parent.linked", parent_id=parent.id, linked_centre_id=code.centre_id)
    return link


def unlink(parent: User, centre_id: int) -> None:
    """The parent stops following the centre. Their concerns about it stay theirs; the code's
    use is not given back."""
    require_role(parent, Role.PARENT)
    with transaction():
        link = db.session.scalar(
            select(ParentLink).where(
                ParentLink.parent_id == parent.id, ParentLink.centre_id == centre_id
            )
        )
        if link is None:
            raise NotFound("您未绑定该托管机构")
        db.session.delete(link)
        audit.record(
            "parent.unlinked", actor_id=parent.id, object_type="centre", object_id=centre_id
        )
        publish("parent.unlinked", parent_id=parent.id, linked_centre_id=centre_id)


def linked_centres(parent: User) -> list[ParentLink]:
    require_role(parent, Role.PARENT)
    return list(
        db.session.scalars(
            select(ParentLink)
            # Each link is shown with its centre's name and status: one query, not one each.
            .options(joinedload(ParentLink.centre))
            .where(ParentLink.parent_id == parent.id)
            .order_by(ParentLink.linked_at, ParentLink.id)
        )
    )


# --- the parent's own details --------------------------------------------------------------

# A mainland China mobile number: 11 digits, 1 then 3–9 (ASCII digits only).
MOBILE_NUMBER = re.compile(r"1[3-9][0-9]{9}")


def normalise_phone(raw: str | None) -> str | None:
    """A mobile number as typed ("138 0013 8000", "+86 138-0013-8000") reduced to its 11
    digits; blank means none. Anything else is refused."""
    typed = re.sub(r"[\s-]", "", raw or "")
    if not typed:
        return None
    number = typed[3:] if typed.startswith("+86") else typed
    if not MOBILE_NUMBER.fullmatch(number):
        raise Unprocessable("请输入正确的手机号码（11 位，以 1 开头）", field="phone")
    return number


def set_phone(parent: User, raw: str | None) -> User:
    """Give, change or clear (blank) the parent's mobile number. Only the inspectors handling
    the parent's concerns see it; operators never do (see app/services/concerns.py)."""
    require_role(parent, Role.PARENT)
    phone = normalise_phone(raw)
    with transaction():
        user = db.session.get(User, parent.id)
        assert user is not None
        if user.phone != phone:
            user.phone = phone
            # The audit log says that it changed, not the number.
            audit.record(
                "parent.phone_changed",
                actor_id=user.id,
                object_type="user",
                object_id=user.id,
                cleared=phone is None,
            )
    return user


# --- the centre page -----------------------------------------------------------------------


def _window(occurrence: centre_service.MealWindowTimes | None) -> dict | None:
    if occurrence is None:
        return None
    return {
        "label": occurrence.window.label,
        "text": occurrence.text,
        "starts_at": occurrence.starts_at.isoformat(),
        "ends_at": occurrence.ends_at.isoformat(),
    }


def centre_page(parent: User, centre_id: int, now: datetime | None = None) -> dict:
    """What a parent's centre page shows: the rooms shown to parents as tiles with their
    cameras (watchable now or why not), the meal windows (the current one, the next one),
    today's snapshots of those rooms (Beijing time) and the inspection record summary."""
    require_role(parent, Role.PARENT)
    now = now or utcnow()
    centre = require_centre(parent, centre_id, Access.READ)
    current = centre_service.current_meal_window(centre, now)
    upcoming = centre_service.next_meal_window(centre, now)
    # The cameras and the record reuse the centre checked above; the watch rules check the
    # scope once for all its cameras, not once per camera.
    cameras = centre_service.cameras_of(parent, centre)
    refusals = watch.watch_refusals(parent, cameras, now)
    rooms = []
    for area in centre.areas:
        if not area.shown_to_parents:
            continue
        tiles = []
        for camera in (c for c in cameras if c.area_id == area.id):
            refusal = refusals[camera.id]
            tiles.append(
                {
                    "id": camera.id,
                    "name": camera.name,
                    "status": camera.status.value,
                    "status_label": CAMERA_STATUS_LABELS[camera.status],
                    "can_watch": refusal is None,
                    "refusal_reason": refusal.details.get("reason") if refusal else None,
                    "refusal_message": refusal.message if refusal else None,
                }
            )
        rooms.append({"id": area.id, "kind": area.kind.value, "name": area.name, "cameras": tiles})

    local_midnight = datetime.combine(
        now.astimezone(CENTRE_TZ).date(), datetime.min.time(), CENTRE_TZ
    )
    snapshots = db.session.execute(
        select(Snapshot, Camera, KitchenArea)
        .join(Camera, Snapshot.camera_id == Camera.id)
        .join(KitchenArea, Camera.area_id == KitchenArea.id)
        .where(
            Camera.centre_id == centre.id,
            KitchenArea.shown_to_parents.is_(True),
            Snapshot.taken_at >= local_midnight,
            Snapshot.taken_at < local_midnight + timedelta(days=1),
        )
        .order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
        .limit(SNAPSHOTS_ON_PAGE)
    ).all()
    return {
        "centre": {
            "id": centre.id,
            "name": centre.name,
            "address": centre.address,
            "status": centre.status.value,
            "suspension_reason": centre.suspension_reason,
        },
        "in_meal_window": current is not None,
        "current_window": _window(current),
        "next_window": _window(upcoming),
        "meal_windows": [
            {"label": w.label, "weekday": w.weekday, "text": centre_service.window_text(w)}
            for w in centre.meal_windows
        ],
        "rooms": rooms,
        "snapshots_today": [
            {
                "id": snapshot.id,
                "camera_id": camera.id,
                "area_id": area.id,
                "area_name": area.name,
                "taken_at": snapshot.taken_at.isoformat(),
                "width": snapshot.width,
                "height": snapshot.height,
            }
            for snapshot, camera, area in snapshots
        ],
        "record": centre_service.record_of(parent, centre),
    }


def parent_for_wechat(openid: str) -> User:
    """The parent an official-account follower is: created the first time they bind from chat.
    Only the openid is kept — nothing more is needed to tell them what became of a concern."""
    if not openid or len(openid) > 64:
        raise Unprocessable("无法识别您的微信身份", field="openid")
    for _ in range(2):
        try:
            with transaction():
                user = db.session.scalar(select(User).where(User.wechat_openid == openid))
                if user is None:
                    user = User(role=Role.PARENT, wechat_openid=openid, display_name="家长")
                    db.session.add(user)
                    db.session.flush()
                    audit.record("user.created_by_wechat", actor_id=user.id)
                return user
        except IntegrityError:
            continue  # the same follower's first two messages raced: the other one created it
    raise Conflict("请稍后重试")
