"""Patrols (巡查): an inspector walks a centre's rooms, remotely or on site, and records what
they saw and the problems they found."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.models import (
    AreaCheckResult,
    Camera,
    Finding,
    FindingCategory,
    KitchenArea,
    Patrol,
    PatrolAreaCheck,
    PatrolMode,
    Role,
    Severity,
    Snapshot,
    User,
    utcnow,
)
from app.services import audit
from app.services.base import publish, transaction
from app.services.scope import Access, require_centre, require_role


@dataclass(frozen=True)
class FindingInput:
    category: FindingCategory
    severity: Severity
    description: str
    area_id: int | None = None
    snapshot_ids: tuple[int, ...] = ()


def start_patrol(inspector: User, centre_id: int, mode: PatrolMode) -> Patrol:
    require_role(inspector, Role.INSPECTOR)
    with transaction():
        centre = require_centre(inspector, centre_id, Access.REGULATE)
        open_patrol = db.session.scalar(
            select(Patrol.id).where(
                Patrol.centre_id == centre.id,
                Patrol.inspector_id == inspector.id,
                Patrol.ended_at.is_(None),
            )
        )
        if open_patrol is not None:
            raise Conflict("您在该机构已有进行中的巡查，请先结束", patrol_id=open_patrol)
        patrol = Patrol(centre_id=centre.id, inspector_id=inspector.id, mode=mode)
        db.session.add(patrol)
        db.session.flush()
        publish(
            "patrol.started",
            patrol_id=patrol.id,
            centre_id=centre.id,
            agency_id=inspector.agency_id,
        )
    return patrol


def _own_open_patrol(inspector: User, patrol_id: int) -> Patrol:
    patrol = db.session.get(Patrol, patrol_id)
    if patrol is None:
        raise NotFound("找不到该巡查记录")
    if patrol.inspector_id != inspector.id:
        raise Forbidden("只能记录自己发起的巡查", reason="not_your_patrol")
    if patrol.ended_at is not None:
        raise Conflict("巡查已结束，不能再修改", current_status="ended")
    return patrol


def _area_of(patrol: Patrol, area_id: int) -> KitchenArea:
    area = db.session.get(KitchenArea, area_id)
    if area is None or area.centre_id != patrol.centre_id:
        raise Unprocessable("该区域不属于此托管机构", field="area_id")
    return area


def _snapshots_of(centre_id: int, snapshot_ids: tuple[int, ...] | list[int]) -> list[Snapshot]:
    if not snapshot_ids:
        return []
    rows = list(
        db.session.scalars(
            select(Snapshot)
            .join(Camera, Snapshot.camera_id == Camera.id)
            .where(Snapshot.id.in_(snapshot_ids), Camera.centre_id == centre_id)
        )
    )
    if len(rows) != len(set(snapshot_ids)):
        raise Unprocessable("抓拍照片不属于此托管机构", field="snapshot_ids")
    return rows


def check_area(
    inspector: User,
    patrol_id: int,
    area_id: int,
    result: AreaCheckResult,
    note: str = "",
    snapshot_id: int | None = None,
) -> PatrolAreaCheck:
    """Record (or correct) what the inspector saw in one room during the patrol."""
    with transaction():
        patrol = _own_open_patrol(inspector, patrol_id)
        area = _area_of(patrol, area_id)
        if snapshot_id is not None:
            _snapshots_of(patrol.centre_id, [snapshot_id])
        check = db.session.scalar(
            select(PatrolAreaCheck).where(
                PatrolAreaCheck.patrol_id == patrol.id, PatrolAreaCheck.area_id == area.id
            )
        )
        if check is None:
            check = PatrolAreaCheck(patrol_id=patrol.id, area_id=area.id, result=result)
            db.session.add(check)
        check.result, check.note, check.snapshot_id = result, note.strip(), snapshot_id
        check.checked_at = utcnow()
        db.session.flush()
    return check


def record_finding(inspector: User, patrol_id: int, data: FindingInput) -> Finding:
    if not data.description.strip():
        raise Unprocessable("请描述发现的问题", field="description")
    with transaction():
        patrol = _own_open_patrol(inspector, patrol_id)
        area = _area_of(patrol, data.area_id) if data.area_id is not None else None
        finding = Finding(
            centre_id=patrol.centre_id,
            patrol_id=patrol.id,
            area_id=area.id if area else None,
            category=data.category,
            severity=data.severity,
            description=data.description.strip(),
            recorded_by_id=inspector.id,
        )
        finding.snapshots = _snapshots_of(patrol.centre_id, data.snapshot_ids)
        db.session.add(finding)
        if area is not None:
            check = db.session.scalar(
                select(PatrolAreaCheck).where(
                    PatrolAreaCheck.patrol_id == patrol.id, PatrolAreaCheck.area_id == area.id
                )
            )
            if check is None:
                db.session.add(
                    PatrolAreaCheck(
                        patrol_id=patrol.id, area_id=area.id, result=AreaCheckResult.FINDING
                    )
                )
            else:
                check.result = AreaCheckResult.FINDING
        db.session.flush()
        publish(
            "patrol.finding_recorded",
            patrol_id=patrol.id,
            finding_id=finding.id,
            centre_id=patrol.centre_id,
            agency_id=inspector.agency_id,
        )
    return finding


def end_patrol(inspector: User, patrol_id: int, summary: str = "") -> Patrol:
    with transaction():
        patrol = _own_open_patrol(inspector, patrol_id)
        patrol.ended_at = utcnow()
        patrol.summary = summary.strip()
        audit.record(
            "patrol.ended", actor_id=inspector.id, object_type="patrol", object_id=patrol.id
        )
        publish(
            "patrol.ended",
            patrol_id=patrol.id,
            centre_id=patrol.centre_id,
            agency_id=inspector.agency_id,
            findings=len(patrol.findings),
        )
    return patrol


def get_patrol(user: User, patrol_id: int) -> Patrol:
    patrol = db.session.get(Patrol, patrol_id)
    if patrol is None:
        raise NotFound("找不到该巡查记录")
    require_centre(user, patrol.centre_id, Access.REGULATE)
    return patrol


def list_patrols(user: User, centre_id: int) -> list[Patrol]:
    require_centre(user, centre_id, Access.REGULATE)
    return list(
        db.session.scalars(
            select(Patrol).where(Patrol.centre_id == centre_id).order_by(Patrol.started_at.desc())
        )
    )
