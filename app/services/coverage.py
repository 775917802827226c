"""The coverage figures regulators report ("35 centres enrolled so far"): centres by status per
district, enrolment over time, cameras by status now, per-room coverage, time to commission."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select

from app.errors import Forbidden
from app.extensions import db
from app.models import (
    AreaKind,
    Camera,
    CameraStatus,
    Centre,
    CentreStatus,
    CentreStatusChange,
    District,
    KitchenArea,
    Role,
    User,
)
from app.services.centres import CENTRE_TZ
from app.services.scope import visible_centre_ids

ROOM_KINDS = (AreaKind.PREP, AreaKind.STORAGE, AreaKind.COOKING, AreaKind.WASHING)


def coverage(user: User) -> dict[str, Any]:
    if user.role not in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden("只有监管人员可以查看覆盖统计", reason="role")
    visible = visible_centre_ids(user)
    centre_query = select(Centre.id, Centre.status, District.name).join(
        District, Centre.district_id == District.id
    )
    if visible is not None:
        centre_query = centre_query.where(Centre.id.in_(visible))
    centres = db.session.execute(centre_query).all()
    ids = [row[0] for row in centres]

    by_district: dict[str, Counter[str]] = defaultdict(Counter)
    for _, status, district in centres:
        by_district[district][status.value] += 1
    totals = Counter(status.value for _, status, _ in centres)

    history = db.session.execute(
        select(CentreStatusChange.centre_id, CentreStatusChange.to_status, CentreStatusChange.at)
        .where(CentreStatusChange.centre_id.in_(ids))
        .order_by(CentreStatusChange.at, CentreStatusChange.id)
    ).all()
    first_seen: dict[int, Any] = {}
    first_live: dict[int, Any] = {}
    for centre_id, to_status, at in history:
        first_seen.setdefault(centre_id, at)
        if to_status is CentreStatus.LIVE:
            first_live.setdefault(centre_id, at)
    monthly = Counter(at.astimezone(CENTRE_TZ).strftime("%Y-%m") for at in first_live.values())
    enrolled_over_time, running = [], 0
    for month in sorted(monthly):
        running += monthly[month]
        enrolled_over_time.append({"month": month, "enrolled": running})
    durations = [(first_live[c] - first_seen[c]).total_seconds() / 86400 for c in first_live]

    cameras = dict(
        db.session.execute(
            select(Camera.status, func.count())
            .where(Camera.centre_id.in_(ids), Camera.is_enabled.is_(True))
            .group_by(Camera.status)
        ).all()
    )
    live_ids = [cid for cid, status, _ in centres if status is CentreStatus.LIVE]
    covered = db.session.execute(
        select(KitchenArea.kind, func.count(func.distinct(Camera.centre_id)))
        .join(Camera, Camera.area_id == KitchenArea.id)
        .where(
            Camera.centre_id.in_(live_ids),
            Camera.is_enabled.is_(True),
            Camera.status == CameraStatus.ONLINE,
        )
        .group_by(KitchenArea.kind)
    ).all()
    covered_by_kind = dict(covered)
    return {
        "centres": {
            "total": len(centres),
            "by_status": {s.value: totals.get(s.value, 0) for s in CentreStatus},
            "by_district": {d: dict(c) for d, c in sorted(by_district.items())},
            # Enrolled = went live at least once (live now or suspended since).
            "enrolled": len(first_live),
        },
        "enrolled_over_time": enrolled_over_time,
        "cameras": {s.value: cameras.get(s, 0) for s in CameraStatus},
        "room_coverage": {
            kind.value: {"live_centres": len(live_ids), "covered": covered_by_kind.get(kind, 0)}
            for kind in ROOM_KINDS
        },
        "mean_days_to_commission": round(sum(durations) / len(durations), 1) if durations else None,
    }
