"""Centre onboarding (安装调试 · 逐项检查): invitation → installation → commissioning against the
checklist standard → live, and suspension by a regulator.

The checklist is data: a versioned standard with automatic items (checked from the media probe
and camera status) and manual items (evidence uploaded by the technician). A centre goes live
only when every required item of its commissioning has passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.models import (
    Agency,
    AgencyKind,
    AreaKind,
    Camera,
    CameraStatus,
    Centre,
    CentreInvitation,
    CentreStatus,
    CentreStatusChange,
    ChecklistItem,
    ChecklistItemKind,
    ChecklistResult,
    ChecklistStandard,
    Commissioning,
    District,
    KitchenArea,
    Role,
    User,
    utcnow,
)
from app.services import audit, outbox, uploads
from app.services.base import publish, transaction
from app.services.cameras import stream_url
from app.services.scope import Access, regulators_of, regulators_of_district, require_centre
from app.services.watch import end_parent_leases, forget_suspension

S = CentreStatus
ROOMS = {
    AreaKind.PREP: "备餐间",
    AreaKind.STORAGE: "储存间",
    AreaKind.COOKING: "操作间",
    AreaKind.WASHING: "清洗间",
}

# action → (from states, to state, roles that may take it)
LIFECYCLE: dict[str, tuple[frozenset[CentreStatus], CentreStatus, frozenset[Role]]] = {
    "start_installation": (
        frozenset({S.INVITED}),
        S.INSTALLING,
        frozenset({Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN}),
    ),
    "start_commissioning": (
        frozenset({S.INSTALLING}),
        S.COMMISSIONING,
        frozenset({Role.TECHNICIAN, Role.ADMIN}),
    ),
    "go_live": (frozenset({S.COMMISSIONING}), S.LIVE, frozenset({Role.TECHNICIAN, Role.ADMIN})),
    "suspend": (frozenset({S.LIVE}), S.SUSPENDED, frozenset({Role.INSPECTOR, Role.ADMIN})),
    "reinstate": (frozenset({S.SUSPENDED}), S.LIVE, frozenset({Role.INSPECTOR, Role.ADMIN})),
}
STATUS_LABELS = {
    S.INVITED: "已发倡议",
    S.INSTALLING: "安装中",
    S.COMMISSIONING: "调试验收中",
    S.LIVE: "已上线",
    S.SUSPENDED: "已暂停",
}

DEFAULT_STANDARD_VERSION = "2026.1"
DEFAULT_ITEMS: list[dict[str, Any]] = [
    {
        "code": "area_coverage",
        "title": "备餐间、储存间、操作间、清洗间均有在线摄像头",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"areas": [k.value for k in ROOMS]},
    },
    {
        "code": "stream_reachable",
        "title": "每路视频流可连接",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {},
    },
    {
        "code": "codec_h264",
        "title": "视频编码为 H.264",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"codec": "h264"},
    },
    {
        "code": "resolution",
        "title": "分辨率不低于 720p",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"min_height": 720},
    },
    {
        "code": "frame_rate",
        "title": "帧率不低于 15 fps",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"min_fps": 15},
    },
    {
        "code": "keyframe_interval",
        "title": "关键帧间隔不超过 2 秒",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"max_seconds": 2.0},
    },
    {
        "code": "online_recent",
        "title": "摄像头持续在线（最近 10 分钟）",
        "kind": ChecklistItemKind.AUTOMATIC,
        "rule": {"minutes": 10},
    },
    {
        "code": "signage_photo",
        "title": "张贴“温馨提示”标识（上传照片）",
        "kind": ChecklistItemKind.MANUAL,
        "rule": {"evidence": "photo"},
    },
    {
        "code": "camera_angle",
        "title": "摄像头角度覆盖灶台、操作台（上传照片）",
        "kind": ChecklistItemKind.MANUAL,
        "rule": {"evidence": "photo"},
    },
    {
        "code": "staff_informed",
        "title": "从业人员知悉拍摄（上传签字确认）",
        "kind": ChecklistItemKind.MANUAL,
        "rule": {"evidence": "statement"},
    },
    {
        "code": "network_line",
        "title": "网络专线或带宽满足要求（填写说明）",
        "kind": ChecklistItemKind.MANUAL,
        "rule": {"evidence": "note"},
        "required": False,
    },
]

# What a manual item's evidence is (its rule's "evidence"), and how the technician is asked
# for it. A signed statement is uploaded as a photo of the signed page.
EVIDENCE = {
    "photo": "照片",
    "statement": "签字确认书照片",
    "note": "文字说明",
}

# The media probe, as the app wires it: url → dict (see media/probe.py). Injected so this
# module runs without ffmpeg in its unit tests of lifecycle rules.
Prober = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class ItemOutcome:
    passed: bool
    detail: dict[str, Any]


# --- standard --------------------------------------------------------------------------------


def active_standard() -> ChecklistStandard:
    """The active standard, creating the default one the first time."""
    standard = db.session.scalar(
        select(ChecklistStandard).where(ChecklistStandard.is_active.is_(True))
    )
    if standard is not None:
        return standard
    standard = ChecklistStandard(
        version=DEFAULT_STANDARD_VERSION,
        title="校外托管机构“互联网+明厨亮灶”安装调试检查规范",
        is_active=True,
    )
    db.session.add(standard)
    db.session.flush()
    for position, item in enumerate(DEFAULT_ITEMS):
        db.session.add(
            ChecklistItem(
                standard_id=standard.id,
                position=position,
                required=item.get("required", True),
                code=item["code"],
                title=item["title"],
                kind=item["kind"],
                rule=item["rule"],
            )
        )
    db.session.flush()
    return standard


def publish_standard(
    admin: User, version: str, title: str, items: list[dict[str, Any]]
) -> ChecklistStandard:
    """Admins edit the standard by publishing a new version; running commissionings keep
    the version they started with."""
    if admin.role is not Role.ADMIN:
        raise Forbidden("只有管理员可以发布检查规范", reason="role")
    if not items:
        raise Unprocessable("检查规范至少要有一项", field="items")
    known = {i["code"]: i for i in DEFAULT_ITEMS if i["kind"] is ChecklistItemKind.AUTOMATIC}
    seen: set[str] = set()
    items = [dict(item) for item in items]  # completed below; the caller's stay as they were
    for item in items:
        if item["code"] in seen:
            raise Unprocessable(f"检查项编码重复：{item['code']}", field="items")
        seen.add(item["code"])
        if item["kind"] is not ChecklistItemKind.AUTOMATIC:
            # A manual item passes on the evidence the technician uploads, so it must say
            # which: without it the item would pass on an empty submission.
            rule = item.get("rule") or {}
            if rule.get("evidence") not in EVIDENCE or set(rule) != {"evidence"}:
                kinds = "、".join(f"{key}（{label}）" for key, label in EVIDENCE.items())
                raise Unprocessable(
                    f"人工检查项 {item['code']} 须注明佐证材料 evidence：{kinds}", field="items"
                )
            item["rule"] = {"evidence": rule["evidence"]}
            continue
        default = known.get(item["code"])
        if default is None:
            raise Unprocessable(f"未知的自动检查项：{item['code']}", field="items")
        # An automatic item's parameters are the ones its check reads, of the same type.
        rule = item.get("rule") or {}
        for key, value in rule.items():
            expected = default["rule"].get(key)
            texts = value if isinstance(value, list) else [value]
            if (
                expected is None
                or type(value) is not type(expected)
                and not (isinstance(expected, float) and isinstance(value, int))
                or any(not isinstance(t, int | float | str) or "\x00" in str(t) for t in texts)
            ):
                raise Unprocessable(f"检查项 {item['code']} 的参数 {key} 无效", field="items")
        item["rule"] = {**default["rule"], **rule}
    with transaction():
        if db.session.scalar(
            select(ChecklistStandard.id).where(ChecklistStandard.version == version)
        ):
            raise Conflict(f"版本 {version} 已存在", field="version")
        for old in db.session.scalars(
            select(ChecklistStandard).where(ChecklistStandard.is_active.is_(True))
        ):
            old.is_active = False
        standard = ChecklistStandard(version=version, title=title, is_active=True)
        db.session.add(standard)
        db.session.flush()
        for position, item in enumerate(items):
            db.session.add(ChecklistItem(standard_id=standard.id, position=position, **item))
        audit.record(
            "checklist.published",
            actor_id=admin.id,
            object_type="standard",
            object_id=standard.id,
            version=version,
        )
    return standard


# --- lifecycle -------------------------------------------------------------------------------


def invite_centre(
    actor: User,
    name: str,
    district_id: int,
    address: str = "",
    letter: str = "",
    agency_id: int | None = None,
) -> Centre:
    """An agency sends a centre the invitation letter (倡议书): the centre starts `invited`.
    An inspector sends it in their agency's name; an admin names the agency, or it is the
    district's nearest market regulation bureau (the one leading the rollout), else its
    nearest regulator of any kind. Every invitation records the agency that sent it."""
    if actor.role not in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden("只有监管部门可以发出倡议", reason="role")
    if not name.strip():
        raise Unprocessable("请填写机构名称", field="name")
    if db.session.get(District, district_id) is None:
        raise Unprocessable("找不到该行政区", field="district_id")
    agency = _inviting_agency(actor, district_id, agency_id)
    with transaction():
        centre = Centre(
            name=name.strip(), district_id=district_id, address=address.strip(), status=S.INVITED
        )
        db.session.add(centre)
        db.session.flush()
        if actor.role is Role.INSPECTOR:
            require_centre(actor, centre.id, Access.REGULATE)  # district in jurisdiction
        for kind, room in ROOMS.items():
            db.session.add(KitchenArea(centre_id=centre.id, kind=kind, name=room))
        db.session.add(CentreInvitation(centre_id=centre.id, agency_id=agency.id, letter=letter))
        db.session.add(
            CentreStatusChange(
                centre_id=centre.id,
                from_status=None,
                to_status=S.INVITED,
                actor_id=actor.id,
                reason=f"{agency.name}发出倡议书",
            )
        )
        publish("centre.invited", centre_id=centre.id, agency_id=agency.id)
    return centre


def _inviting_agency(actor: User, district_id: int, agency_id: int | None) -> Agency:
    if actor.role is Role.INSPECTOR:
        if agency_id is not None and agency_id != actor.agency_id:
            raise Unprocessable("只能以本单位的名义发出倡议", field="agency_id")
        agency = db.session.get(Agency, actor.agency_id)
        assert agency is not None  # an inspector belongs to an agency (a table constraint)
        return agency
    covering = regulators_of_district(district_id)
    if agency_id is not None:
        agency = db.session.get(Agency, agency_id)
        if agency is None:
            raise Unprocessable("找不到该监管部门", field="agency_id")
        if agency not in covering:
            raise Unprocessable(f"该行政区不在{agency.name}的辖区内", field="agency_id")
        return agency
    chosen = next(
        (a for a in covering if a.kind is AgencyKind.MARKET_REGULATION),
        covering[0] if covering else None,
    )
    if chosen is None:
        raise Unprocessable(
            "该行政区尚无监管部门，请先设立监管部门或指定发出倡议的部门", field="agency_id"
        )
    return chosen


def _move(centre: Centre, action: str, actor: User, why: str | None, **event: Any) -> None:
    """One lifecycle step: checked, stamped in the history and published (with `event`'s
    extra keys)."""
    sources, target, roles = LIFECYCLE[action]
    if actor.role not in roles:
        raise Forbidden("您的角色不能执行此操作", reason="role")
    access = Access.REGULATE if actor.role is Role.INSPECTOR else Access.MANAGE
    require_centre(actor, centre.id, access)
    if centre.status not in sources:
        raise Conflict(
            f"机构当前为“{STATUS_LABELS[centre.status]}”，不能执行此操作",
            current_status=centre.status.value,
        )
    db.session.add(
        CentreStatusChange(
            centre_id=centre.id,
            from_status=centre.status,
            to_status=target,
            actor_id=actor.id,
            reason=why,
        )
    )
    centre.status = target
    centre.status_changed_at = utcnow()
    publish(
        f"centre.{target.value}",
        centre_id=centre.id,
        status=target.value,
        agency_ids=[a.id for a in regulators_of(centre)],
        **event,
    )


def _centre_for_update(centre_id: int) -> Centre:
    centre = db.session.scalar(select(Centre).where(Centre.id == centre_id).with_for_update())
    if centre is None:
        raise NotFound("找不到该托管机构")
    return centre


def start_installation(actor: User, centre_id: int) -> Centre:
    with transaction():
        centre = _centre_for_update(centre_id)
        _move(centre, "start_installation", actor, "接受倡议，开始安装")
        for invitation in db.session.scalars(
            select(CentreInvitation).where(
                CentreInvitation.centre_id == centre.id, CentreInvitation.accepted_at.is_(None)
            )
        ):
            invitation.accepted_at = utcnow()
    return centre


def start_commissioning(technician: User, centre_id: int) -> Commissioning:
    with transaction():
        centre = _centre_for_update(centre_id)
        _move(centre, "start_commissioning", technician, "安装完成，开始调试验收")
        commissioning = Commissioning(
            centre_id=centre.id, standard_id=active_standard().id, technician_id=technician.id
        )
        db.session.add(commissioning)
        db.session.flush()
    return commissioning


def suspend(inspector: User, centre_id: int, reason: str) -> Centre:
    """Stop parents' live view of a live centre, with the reason they are shown. New watch
    requests are refused (app.services.watch), parents' running leases end now so the media
    runner stops the streams nobody else is watching, the event reaches the parents'
    centre room, and the signed HLS route refuses the centre's files (see
    watch.suspended_stream_refusal for the window left when staff keep watching)."""
    reason = reason.strip()
    if not reason:
        raise Unprocessable("请填写暂停原因（将展示给家长）", field="reason")
    with transaction():
        centre = _centre_for_update(centre_id)
        _move(centre, "suspend", inspector, reason, reason=reason)
        centre.suspension_reason = reason
        end_parent_leases(centre.id, centre.status_changed_at)
        for operator in outbox.operators_of(centre.id):
            outbox.notify_user(
                operator,
                "centre.suspended",
                f"centre.suspended:{centre.id}:{centre.status_changed_at.isoformat()}",
                {"centre_id": centre.id, "reason": centre.suspension_reason},
            )
    forget_suspension(centre_id)
    return centre


def reinstate(inspector: User, centre_id: int, reason: str = "") -> Centre:
    with transaction():
        centre = _centre_for_update(centre_id)
        _move(centre, "reinstate", inspector, reason.strip() or "恢复直播")
        centre.suspension_reason = None
    forget_suspension(centre_id)
    return centre


def centre_history(user: User, centre_id: int) -> dict[str, Any]:
    """The centre's invitation (which agency sent it, when and by whom, when it was accepted)
    and its lifecycle history (who moved it from which status to which, when and why), for
    the staff who regulate, install or administer it."""
    if user.role not in (Role.INSPECTOR, Role.TECHNICIAN, Role.ADMIN):
        raise Forbidden("您的角色不能查看机构的入驻记录", reason="role")
    centre = require_centre(user, centre_id, Access.READ)
    changes = db.session.execute(
        select(CentreStatusChange, User)
        .outerjoin(User, User.id == CentreStatusChange.actor_id)
        .where(CentreStatusChange.centre_id == centre.id)
        .order_by(CentreStatusChange.at, CentreStatusChange.id)
    ).all()
    history = [
        {
            "at": change.at,
            "from_status": change.from_status.value if change.from_status else None,
            "from_label": STATUS_LABELS[change.from_status] if change.from_status else None,
            "to_status": change.to_status.value,
            "to_label": STATUS_LABELS[change.to_status],
            "actor": _person(actor),
            "reason": change.reason,
        }
        for change, actor in changes
    ]
    invitation = db.session.scalar(
        select(CentreInvitation)
        .where(CentreInvitation.centre_id == centre.id)
        .order_by(CentreInvitation.id)
        .limit(1)
    )
    sent_by = next((step["actor"] for step in history if step["from_status"] is None), None)
    return {
        "centre_id": centre.id,
        "status": centre.status.value,
        "status_label": STATUS_LABELS[centre.status],
        "invitation": None
        if invitation is None
        else {
            "agency_id": invitation.agency_id,
            "agency_name": invitation.agency.name,
            "agency_kind": invitation.agency.kind.value,
            "sent_at": invitation.sent_at,
            "sent_by": sent_by,
            "accepted_at": invitation.accepted_at,
            "letter": invitation.letter,
        },
        "history": history,
    }


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.display_name, "role": user.role.value}


# --- the checklist -----------------------------------------------------------------------------


def current_commissioning(user: User, centre_id: int) -> Commissioning:
    require_centre(user, centre_id, Access.READ)
    commissioning = db.session.scalar(
        select(Commissioning)
        .where(Commissioning.centre_id == centre_id)
        .order_by(Commissioning.id.desc())
        .limit(1)
    )
    if commissioning is None:
        raise NotFound("该机构尚未开始调试验收")
    return commissioning


def checklist(user: User, centre_id: int) -> dict[str, Any]:
    """Every item of the commissioning's standard with its latest result."""
    commissioning = current_commissioning(user, centre_id)
    standard = db.session.get(ChecklistStandard, commissioning.standard_id)
    assert standard is not None
    results = {r.item_id: r for r in commissioning.results}
    items = []
    for item in standard.items:
        result = results.get(item.id)
        items.append(
            {
                "item_id": item.id,
                "code": item.code,
                "title": item.title,
                "kind": item.kind.value,
                "required": item.required,
                # What a manual item asks for (photo / statement / note; see EVIDENCE).
                "evidence": (item.rule or {}).get("evidence", "photo")
                if item.kind is ChecklistItemKind.MANUAL
                else None,
                "passed": None if result is None else result.passed,
                "detail": None if result is None else result.detail,
                "note": None if result is None else result.note,
                "checked_at": None if result is None else result.checked_at.isoformat(),
            }
        )
    blocking = [i["title"] for i in items if i["required"] and i["passed"] is not True]
    return {
        "commissioning_id": commissioning.id,
        "centre_id": centre_id,
        "standard_version": standard.version,
        "items": items,
        "ready": not blocking,
        "blocking": blocking,
        "signed_off_at": commissioning.signed_off_at.isoformat()
        if commissioning.signed_off_at
        else None,
    }


def _set_result(
    commissioning: Commissioning,
    item: ChecklistItem,
    outcome: ItemOutcome,
    actor: User | None,
    note: str = "",
) -> ChecklistResult:
    result = db.session.scalar(
        select(ChecklistResult).where(
            ChecklistResult.commissioning_id == commissioning.id, ChecklistResult.item_id == item.id
        )
    )
    if result is None:
        result = ChecklistResult(
            commissioning_id=commissioning.id, item_id=item.id, passed=outcome.passed
        )
        db.session.add(result)
    result.passed, result.detail, result.note = outcome.passed, outcome.detail, note
    result.checked_by_id = actor.id if actor else None
    result.checked_at = utcnow()
    db.session.flush()
    return result


def evaluate_automatic(
    item: ChecklistItem,
    cameras: list[Camera],
    probes: dict[int, dict[str, Any]],
    now: dt.datetime,
    judge_status: bool = True,
) -> ItemOutcome:
    """Judge one automatic item from the centre's cameras and their probes. `judge_status`:
    whether the cameras' status counts (a room is covered only by an online camera; cameras
    online for the last N minutes). Commissioning judges it; the live re-check leaves it to
    the camera alerts, which follow status changes as they happen."""
    rule = item.rule or {}
    per_camera: dict[str, Any] = {}

    def each(check: Callable[[dict[str, Any]], tuple[bool, Any]]) -> ItemOutcome:
        ok = bool(cameras)
        for camera in cameras:
            passed, value = check(probes.get(camera.id) or {})
            per_camera[str(camera.id)] = {"passed": passed, "value": value}
            ok = ok and passed
        return ItemOutcome(ok, {"cameras": per_camera} if cameras else {"error": "没有摄像头"})

    if item.code == "area_coverage":
        installed = {c.area.kind.value for c in cameras if c.is_enabled}
        online = {
            c.area.kind.value
            for c in cameras
            if c.is_enabled and (c.status is CameraStatus.ONLINE or not judge_status)
        }
        rooms = rule.get("areas", [])
        missing = [ROOMS[AreaKind(a)] for a in rooms if a not in installed]
        not_online = [ROOMS[AreaKind(a)] for a in rooms if a in installed and a not in online]
        return ItemOutcome(
            not missing and not not_online, {"missing": missing, "not_online": not_online}
        )
    if item.code == "stream_reachable":
        return each(lambda p: (bool(p.get("reachable")), p.get("error")))
    if item.code == "codec_h264":
        return each(
            lambda p: (
                p.get("codec") == rule.get("codec", "h264") and p.get("bit_depth", 8) == 8,
                p.get("codec"),
            )
        )
    if item.code == "resolution":
        return each(
            lambda p: (
                (p.get("height") or 0) >= rule["min_height"],
                f"{p.get('width')}x{p.get('height')}",
            )
        )
    if item.code == "frame_rate":
        return each(lambda p: ((p.get("fps") or 0) >= rule["min_fps"], p.get("fps")))
    if item.code == "keyframe_interval":
        return each(lambda p: _keyframes_ok(p, rule["max_seconds"]))
    if item.code == "online_recent":
        since = now - dt.timedelta(minutes=rule.get("minutes", 10))

        def online(camera: Camera) -> bool:
            return camera.status is CameraStatus.ONLINE and (
                camera.status_changed_at is None or camera.status_changed_at <= since
            )

        states = {str(c.id): c.status.value for c in cameras}
        return ItemOutcome(bool(cameras) and all(online(c) for c in cameras), {"cameras": states})
    return ItemOutcome(False, {"error": f"未知检查项 {item.code}"})


def probe_cameras(cameras: list[Camera], prober: Prober) -> dict[int, dict[str, Any]]:
    """Probe every camera: side by side (each read takes seconds), then once more, one at a
    time, for any camera that looked unreachable — a single lost probe (the camera busy with
    another client, a moment of network trouble) should not fail a check or raise a finding.

    Rows that point at the same stream are probed once: a camera (or NVR channel) asked for
    the same stream by several clients in the same instant may refuse some of them or worse."""
    urls = {camera.id: stream_url(camera) for camera in cameras}
    distinct = list(dict.fromkeys(urls.values()))
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(distinct)))) as pool:
        by_url = dict(zip(distinct, pool.map(prober, distinct), strict=True))
    for url, result in by_url.items():
        if not result.get("reachable"):
            by_url[url] = prober(url)
    return {camera_id: by_url[url] for camera_id, url in urls.items()}


def _keyframes_ok(probe: dict[str, Any], max_seconds: float) -> tuple[bool, Any]:
    """The longest keyframe gap measured from real packets; with fewer than two keyframes in
    the sample only a lower bound is known, which can fail the rule but never pass it."""
    measured = probe.get("keyframe_interval")
    if measured is not None:
        return measured <= max_seconds, measured
    at_least = probe.get("keyframe_interval_at_least")
    return False, None if at_least is None else f">={at_least}"


def run_automatic_checks(
    user: User, centre_id: int, prober: Prober, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Probe every camera of the centre and store each automatic item's result. The probes
    run before the transaction (they take about a second per camera)."""
    now = now or utcnow()
    require_centre(
        user, centre_id, Access.MANAGE if user.role is not Role.INSPECTOR else Access.REGULATE
    )
    commissioning = current_commissioning(user, centre_id)
    cameras = list(
        db.session.scalars(
            select(Camera)
            .where(Camera.centre_id == centre_id, Camera.is_enabled.is_(True))
            .order_by(Camera.id)
        )
    )
    probes = probe_cameras(cameras, prober)
    db.session.rollback()  # end the read; the write below takes its own transaction
    with transaction():
        commissioning = db.session.get(Commissioning, commissioning.id)
        assert commissioning is not None
        cameras = list(
            db.session.scalars(
                select(Camera)
                .where(Camera.centre_id == centre_id, Camera.is_enabled.is_(True))
                .order_by(Camera.id)
            )
        )
        for camera in cameras:
            if camera.id in probes:
                camera.probe, camera.probed_at = probes[camera.id], now
        standard = db.session.get(ChecklistStandard, commissioning.standard_id)
        assert standard is not None
        for item in standard.items:
            if item.kind is ChecklistItemKind.AUTOMATIC:
                _set_result(
                    commissioning, item, evaluate_automatic(item, cameras, probes, now), user
                )
    return checklist(user, centre_id)


def record_manual(
    technician: User, centre_id: int, item_id: int, note: str, photos: list[uploads.Photo]
) -> dict[str, Any]:
    """Evidence for a manual item, the kind its rule names: a photo (signage, angle), a photo
    of a signed statement, or a note."""
    checked = uploads.check_photos(photos, 5)
    with transaction():
        centre = _centre_for_update(centre_id)
        require_centre(technician, centre.id, Access.MANAGE)
        if technician.role not in (Role.TECHNICIAN, Role.ADMIN):
            raise Forbidden("只有技术人员可以提交验收材料", reason="role")
        commissioning = current_commissioning(technician, centre.id)
        if commissioning.signed_off_at is not None:
            raise Conflict("验收已签字确认，不能再修改", current_status=centre.status.value)
        item = db.session.get(ChecklistItem, item_id)
        if item is None or item.standard_id != commissioning.standard_id:
            raise NotFound("找不到该检查项")
        if item.kind is not ChecklistItemKind.MANUAL:
            raise Unprocessable("自动检查项由系统检测，不能手工填写", field="item_id")
        evidence = (item.rule or {}).get("evidence")
        if evidence not in EVIDENCE:
            evidence = "photo"  # an item of a standard published before evidence was required
        if evidence in ("photo", "statement") and not checked:
            raise Unprocessable(f"“{item.title}”需要上传{EVIDENCE[evidence]}", field="photos")
        if evidence == "note" and not note.strip():
            raise Unprocessable(f"“{item.title}”需要填写{EVIDENCE[evidence]}", field="note")
        result = _set_result(
            commissioning,
            item,
            ItemOutcome(True, {"evidence": evidence, "photos": len(checked)}),
            technician,
            note.strip(),
        )
        for photo in checked:
            db.session.add(uploads.store(photo, technician.id, checklist_result_id=result.id))
    return checklist(technician, centre_id)


def sign_off(technician: User, centre_id: int, now: dt.datetime | None = None) -> Centre:
    """The technician signs the checklist; the centre goes live only if every required item
    has passed, and the automatic ones recently (COMMISSIONING_CHECK_MAX_AGE_H): a camera
    that passed last week may be unplugged today."""
    now = now or utcnow()
    max_age = dt.timedelta(hours=current_app.config["COMMISSIONING_CHECK_MAX_AGE_H"])
    with transaction():
        centre = _centre_for_update(centre_id)
        state = checklist(technician, centre.id)
        if not state["ready"]:
            raise Conflict(
                "以下必检项尚未通过：" + "、".join(state["blocking"]),
                current_status=centre.status.value,
                blocking=state["blocking"],
            )
        commissioning = db.session.get(Commissioning, state["commissioning_id"])
        assert commissioning is not None
        stale = [
            result.item.title
            for result in sorted(commissioning.results, key=lambda r: r.item.position)
            if result.item.kind is ChecklistItemKind.AUTOMATIC
            and result.item.required
            and result.checked_at < now - max_age
        ]
        if stale:
            hours = current_app.config["COMMISSIONING_CHECK_MAX_AGE_H"]
            raise Conflict(
                f"自动检测结果已超过 {hours} 小时，请重新运行自动检测后再签字：" + "、".join(stale),
                current_status=centre.status.value,
                stale=stale,
            )
        _move(centre, "go_live", technician, "逐项检查通过，签字验收")
        commissioning.signed_off_at = utcnow()
        commissioning.signed_off_by_id = technician.id
    return centre


def recheck_live(prober: Prober, now: dt.datetime | None = None) -> list[int]:
    """Scheduled re-check of live centres: the automatic items of each centre's standard are
    judged again from fresh probes. A required item that now fails (camera gone, resolution
    dropped…) raises one finding per item and day and tells the operator. Returns the ids of
    the findings raised."""
    from app.models import Finding, FindingCategory, Severity

    now = now or utcnow()
    today = now.date()
    raised: list[int] = []
    centre_ids = list(db.session.scalars(select(Centre.id).where(Centre.status == S.LIVE)))
    for centre_id in centre_ids:
        commissioning = db.session.scalar(
            select(Commissioning)
            .where(Commissioning.centre_id == centre_id)
            .order_by(Commissioning.id.desc())
            .limit(1)
        )
        standard = (
            db.session.get(ChecklistStandard, commissioning.standard_id)
            if commissioning
            else active_standard()
        )
        assert standard is not None
        cameras = list(
            db.session.scalars(
                select(Camera).where(Camera.centre_id == centre_id, Camera.is_enabled.is_(True))
            )
        )
        probes = probe_cameras(cameras, prober)
        failing = [
            item
            for item in standard.items
            if item.kind is ChecklistItemKind.AUTOMATIC
            and item.required
            and item.code != "online_recent"
            and not evaluate_automatic(item, cameras, probes, now, judge_status=False).passed
        ]
        db.session.rollback()
        if not failing:
            continue
        with transaction():
            for item in failing:
                description = f"复检未通过：{item.title}"
                exists = db.session.scalar(
                    select(Finding.id).where(
                        Finding.centre_id == centre_id,
                        Finding.description == description,
                        Finding.recorded_at >= dt.datetime.combine(today, dt.time(), dt.UTC),
                    )
                )
                if exists is not None:
                    continue
                finding = Finding(
                    centre_id=centre_id,
                    category=FindingCategory.CAMERA,
                    severity=Severity.II,
                    description=description,
                )
                db.session.add(finding)
                db.session.flush()
                raised.append(finding.id)
                for operator in outbox.operators_of(centre_id):
                    outbox.notify_user(
                        operator,
                        "centre.recheck_failed",
                        f"recheck:{finding.id}",
                        {"centre_id": centre_id, "item": item.title},
                    )
                publish(
                    "centre.recheck_failed",
                    centre_id=centre_id,
                    finding_id=finding.id,
                    item=item.code,
                )
    return raised
