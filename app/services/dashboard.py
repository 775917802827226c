"""The inspectors' dashboard: counts over the user's scope in a few grouped SELECTs.

Read-only. Without it the page would list every centre and then ask for each centre's cameras
and notices — one request per centre, thousands for a city.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Camera,
    Centre,
    Finding,
    KitchenArea,
    NoticeStatus,
    RectificationNotice,
    Role,
    User,
)
from app.services import concerns
from app.services.notices import OPEN_STATUSES
from app.services.scope import require_role, visible_centre_ids

RECENT_FINDINGS = 10
CONCERNS_SHOWN = 10
OVERDUE = (NoticeStatus.OVERDUE, NoticeStatus.ESCALATED)


def summary(user: User) -> dict[str, Any]:
    """Centres by status, cameras by status now, notices by status (open, overdue, awaiting
    review), parents' concerns on the clock and the latest findings — for the inspector's
    jurisdiction (admins: everything)."""
    require_role(user, Role.INSPECTOR, Role.ADMIN)
    visible = visible_centre_ids(user)

    centres = select(Centre.status, func.count()).group_by(Centre.status)
    cameras = (
        select(Camera.status, func.count())
        .where(Camera.is_enabled.is_(True))
        .group_by(Camera.status)
    )
    findings = (
        select(Finding, Centre.name, KitchenArea.name)
        .join(Centre, Finding.centre_id == Centre.id)
        .outerjoin(KitchenArea, Finding.area_id == KitchenArea.id)
        .order_by(Finding.recorded_at.desc(), Finding.id.desc())
        .limit(RECENT_FINDINGS)
    )
    # Notices belong to the agency that issued them (as in the notice list), not to whoever
    # can see the centre.
    notices = (
        select(RectificationNotice.status, func.count())
        .where(RectificationNotice.status.not_in([NoticeStatus.DRAFT, NoticeStatus.WITHDRAWN]))
        .group_by(RectificationNotice.status)
    )
    if visible is not None:
        centres = centres.where(Centre.id.in_(visible))
        cameras = cameras.where(Camera.centre_id.in_(visible))
        findings = findings.where(Finding.centre_id.in_(visible))
    if user.role is Role.INSPECTOR:
        notices = notices.where(RectificationNotice.agency_id == user.agency_id)

    notice_counts = {status: n for status, n in db.session.execute(notices).all()}
    on_the_clock = concerns.on_the_clock(user, CONCERNS_SHOWN)
    return {
        "centres": {status.value: n for status, n in db.session.execute(centres).all()},
        "cameras": {status.value: n for status, n in db.session.execute(cameras).all()},
        "notices": {status.value: n for status, n in notice_counts.items()},
        "notices_open": sum(n for s, n in notice_counts.items() if s in OPEN_STATUSES),
        "notices_overdue": sum(n for s, n in notice_counts.items() if s in OVERDUE),
        "notices_awaiting_review": notice_counts.get(NoticeStatus.RESPONDED, 0),
        "concerns_open": on_the_clock["open"],
        "concerns_overdue": on_the_clock["overdue"],
        "concerns_on_the_clock": on_the_clock["items"],
        "recent_findings": [
            {
                "id": finding.id,
                "centre_id": finding.centre_id,
                "centre_name": centre_name,
                "area_name": area_name,
                "category": finding.category.value,
                "severity": finding.severity.value,
                "description": finding.description,
                "recorded_at": finding.recorded_at,
            }
            for finding, centre_name, area_name in db.session.execute(findings).all()
        ],
    }
