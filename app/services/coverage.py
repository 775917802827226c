"""The coverage figures regulators report ("35 centres enrolled so far"): centres by status per
district and per agency, enrolment over time, cameras by status now, per-room coverage, time
to commission."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, func, select

from app.errors import Forbidden
from app.extensions import db
from app.models import (
    Agency,
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
    utcnow,
)
from app.services.centres import CENTRE_TZ
from app.services.scope import visible_centre_ids

ROOM_KINDS = (AreaKind.PREP, AreaKind.STORAGE, AreaKind.COOKING, AreaKind.WASHING)


def coverage(user: User, now: dt.datetime | None = None) -> dict[str, Any]:
    if user.role not in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden("只有监管人员可以查看覆盖统计", reason="role")
    visible = visible_centre_ids(user)
    centre_query = select(Centre.id, Centre.status, Centre.district_id)
    if visible is not None:
        centre_query = centre_query.where(Centre.id.in_(visible))
    centres = db.session.execute(centre_query).all()
    ids = [row[0] for row in centres]
    totals = Counter(status.value for _, status, _ in centres)

    # Districts by id (two districts of a city may share a name), each with its name.
    districts = {d.id: d for d in db.session.scalars(select(District))}
    by_district: dict[int, Counter[str]] = defaultdict(Counter)
    for _, status, district_id in centres:
        by_district[district_id][status.value] += 1

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
            "by_status": _by_status(totals),
            "by_district": {
                str(district_id): {
                    "name": districts[district_id].name,
                    "total": sum(counts.values()),
                    "by_status": _by_status(counts),
                }
                for district_id, counts in sorted(by_district.items())
            },
            "by_agency": _by_agency(user, centres, districts),
            # Enrolled = went live at least once (live now or suspended since).
            "enrolled": len(first_live),
        },
        "enrolled_over_time": _enrolled_over_time(first_live.values(), now or utcnow()),
        "cameras": {s.value: cameras.get(s, 0) for s in CameraStatus},
        "room_coverage": {
            kind.value: {"live_centres": len(live_ids), "covered": covered_by_kind.get(kind, 0)}
            for kind in ROOM_KINDS
        },
        "mean_days_to_commission": round(sum(durations) / len(durations), 1) if durations else None,
    }


def _by_status(counts: Counter[str]) -> dict[str, int]:
    return {s.value: counts.get(s.value, 0) for s in CentreStatus}


def _by_agency(
    user: User,
    centres: Sequence[Row[tuple[int, CentreStatus, int]]],
    districts: dict[int, District],
) -> dict[str, dict[str, Any]]:
    """Centres in each agency's jurisdiction (its district and those below) by status. An
    inspector sees their own agency and the agencies below it; an admin every agency."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for district in districts.values():
        children[district.parent_id].append(district.id)

    def below(district_id: int) -> set[int]:
        found, frontier = {district_id}, [district_id]
        while frontier:
            frontier = [c for d in frontier for c in children[d] if c not in found]
            found.update(frontier)
        return found

    agencies = list(db.session.scalars(select(Agency).order_by(Agency.id)))
    if user.role is not Role.ADMIN:
        own = next((a for a in agencies if a.id == user.agency_id), None)
        scope = below(own.district_id) if own else set()
        agencies = [a for a in agencies if a.district_id in scope]
    figures: dict[str, dict[str, Any]] = {}
    for agency in agencies:
        jurisdiction = below(agency.district_id)
        counts = Counter(
            status.value for _, status, district_id in centres if district_id in jurisdiction
        )
        figures[str(agency.id)] = {
            "name": agency.name,
            "kind": agency.kind.value,
            "district_id": agency.district_id,
            "total": sum(counts.values()),
            "by_status": _by_status(counts),
        }
    return figures


def _enrolled_over_time(went_live: Iterable[dt.datetime], now: dt.datetime) -> list[dict]:
    """Centres enrolled so far at the end of each month (Beijing time), from the month of the
    first enrolment to this one: a month with none repeats the figure before it."""
    monthly = Counter(at.astimezone(CENTRE_TZ).strftime("%Y-%m") for at in went_live)
    if not monthly:
        return []
    year, month = map(int, min(monthly).split("-"))
    last = max(max(monthly), now.astimezone(CENTRE_TZ).strftime("%Y-%m"))
    series, running = [], 0
    while (key := f"{year:04d}-{month:02d}") <= last:
        running += monthly.get(key, 0)
        series.append({"month": key, "enrolled": running})
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return series
