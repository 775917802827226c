"""Snapshots (抓拍): one JPEG of a camera, stored with time, camera, SHA-256 and who/why;
checked for tampering (black: lens covered or lights off; frozen: the same picture for seconds
while the camera claims to be live); kept for a configured number of days unless used as
evidence."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, select, union

from app.errors import Forbidden, NotFound, UpstreamError
from app.extensions import db
from app.models import (
    Camera,
    CameraStatus,
    Finding,
    FindingCategory,
    KitchenArea,
    NoticeResponse,
    Patrol,
    PatrolAreaCheck,
    RectificationNotice,
    Role,
    Severity,
    Snapshot,
    SnapshotReason,
    User,
    utcnow,
)
from app.models.patrol import finding_snapshots
from app.services.base import publish, transaction
from app.services.cameras import alert_operators, audience, stream_url
from app.services.centres import CENTRE_TZ
from app.services.scope import Access, require_centre
from media import snapshot as media_snapshot

# The media layer's picture-taker: (camera id, stream URL) → media.snapshot.Snapshot.
Shooter = Callable[[int, str], media_snapshot.Snapshot]


def _store_file(camera_id: int, shot: media_snapshot.Snapshot) -> str:
    day = shot.taken_at.astimezone(CENTRE_TZ).strftime("%Y%m%d")
    relative = Path("snapshots") / str(camera_id) / day / f"{shot.sha256}.jpg"
    target = Path(current_app.config["INSTANCE_PATH"]) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".snap-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(shot.jpeg)
    os.replace(tmp, target)
    return str(relative)


def snapshot_path(snapshot: Snapshot) -> Path:
    return Path(current_app.config["INSTANCE_PATH"]) / snapshot.path


def take(
    user: User | None,
    camera_id: int,
    reason: SnapshotReason,
    shooter: Shooter,
    patrol_id: int | None = None,
) -> Snapshot:
    """Take and store one snapshot. `user` None is the schedule."""
    camera = db.session.get(Camera, camera_id)
    if camera is None:
        raise NotFound("找不到该摄像头")
    if user is not None:
        if user.role is Role.PARENT:
            raise Forbidden("家长不能抓拍", reason="role")
        require_centre(
            user,
            camera.centre_id,
            Access.REGULATE if user.role is Role.INSPECTOR else Access.MANAGE,
        )
    if patrol_id is not None:
        patrol = db.session.get(Patrol, patrol_id)
        if patrol is None or patrol.centre_id != camera.centre_id or patrol.ended_at:
            raise NotFound("找不到进行中的巡查")
    url = stream_url(camera)
    claims_live = camera.status is CameraStatus.ONLINE
    db.session.rollback()  # nothing held open while ffmpeg works
    try:
        shot = shooter(camera_id, url)
    except media_snapshot.SnapshotError as exc:
        raise UpstreamError(f"抓拍失败：{exc}", reason="camera_unreachable") from exc
    tampered = _tamper_reason(camera_id, shot, claims_live)
    with transaction():
        camera = db.session.get(Camera, camera_id)
        assert camera is not None
        row = Snapshot(
            camera_id=camera_id,
            taken_at=shot.taken_at,
            path=_store_file(camera_id, shot),
            sha256=shot.sha256,
            size_bytes=len(shot.jpeg),
            reason=reason,
            taken_by_id=user.id if user else None,
            patrol_id=patrol_id,
        )
        db.session.add(row)
        db.session.flush()
        publish(
            "snapshot.created",
            snapshot_id=row.id,
            camera_id=camera_id,
            centre_id=camera.centre_id,
            reason=reason.value,
            **audience(camera),
        )
        if tampered is not None:
            _flag_tampered(camera, row, tampered)
    return row


def _tamper_reason(camera_id: int, shot: media_snapshot.Snapshot, claims_live: bool) -> str | None:
    """A covered lens shows in any one picture. A frozen picture only shows over time, and
    only while the camera claims to be live: then the first frames of several different
    segments of its running stream, FROZEN_MIN_SPAN_S apart, must all be identical. Two
    snapshots cut from the same newest segment are identical by construction, and a camera that
    stopped sending keeps its last picture (that is offline or stalled, not frozen), so
    earlier snapshots are never the comparison. Returns what is wrong, or None."""
    if media_snapshot.is_black(shot.jpeg):
        return "画面全黑（疑似遮挡或关灯）"
    if not claims_live:
        return None
    still = media_snapshot.stillness(
        Path(current_app.config["HLS_ROOT"]) / str(camera_id),
        min_span_s=float(current_app.config["FROZEN_MIN_SPAN_S"]),
    )
    if still is None or not still.frozen:
        return None
    return f"画面静止不变（{still.span_s:.0f} 秒内多帧画面完全相同，疑似画面冻结）"


def _flag_tampered(camera: Camera, snapshot: Snapshot, what: str) -> None:
    """A camera that shows nothing useful: flag it and raise a finding the regulators see."""
    if camera.status is not CameraStatus.TAMPERED:
        camera.status = CameraStatus.TAMPERED
        camera.status_changed_at = utcnow()
        alert_operators(camera, what)
        publish(
            "camera.status",
            camera_id=camera.id,
            centre_id=camera.centre_id,
            status=CameraStatus.TAMPERED.value,
            reason=what,
            **audience(camera),
        )
    finding = Finding(
        centre_id=camera.centre_id,
        area_id=camera.area_id,
        category=FindingCategory.CAMERA,
        severity=Severity.II,
        description=f"{camera.name}{what}",
    )
    finding.snapshots = [snapshot]
    db.session.add(finding)
    db.session.flush()
    publish(
        "camera.tampered",
        camera_id=camera.id,
        centre_id=camera.centre_id,
        finding_id=finding.id,
        reason=what,
        agency_ids=audience(camera)["agency_ids"],
    )


def readable(user: User, snapshot_id: int, now: datetime | None = None) -> Snapshot:
    """A snapshot the user may see: staff in scope; parents only today's snapshots of rooms
    shown to parents in their centres."""
    snapshot = db.session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise NotFound("找不到该抓拍")
    camera = db.session.get(Camera, snapshot.camera_id)
    assert camera is not None
    require_centre(user, camera.centre_id, Access.READ)
    if user.role is Role.PARENT:
        area = db.session.get(KitchenArea, camera.area_id)
        today = (now or utcnow()).astimezone(CENTRE_TZ).date()
        if (
            area is None
            or not area.shown_to_parents
            or snapshot.taken_at.astimezone(CENTRE_TZ).date() != today
        ):
            raise Forbidden("家长只能查看当天公开区域的抓拍", reason="not_shown")
    return snapshot


def purge_expired(now: datetime | None = None) -> int:
    """Delete snapshots older than the retention period, except those used as evidence
    (findings, patrol rooms, notice reviews). Returns how many were deleted."""
    days = current_app.config["SNAPSHOT_RETENTION_DAYS"]
    cutoff = (now or utcnow()) - timedelta(days=days)
    evidence = union(
        select(finding_snapshots.c.snapshot_id),
        select(PatrolAreaCheck.snapshot_id).where(PatrolAreaCheck.snapshot_id.is_not(None)),
        select(RectificationNotice.review_snapshot_id).where(
            RectificationNotice.review_snapshot_id.is_not(None)
        ),
        select(NoticeResponse.review_snapshot_id).where(
            NoticeResponse.review_snapshot_id.is_not(None)
        ),
    )
    with transaction():
        doomed = list(
            db.session.scalars(
                select(Snapshot).where(Snapshot.taken_at < cutoff, Snapshot.id.not_in(evidence))
            )
        )
        paths = [snapshot_path(s) for s in doomed]
        if doomed:
            db.session.execute(delete(Snapshot).where(Snapshot.id.in_([s.id for s in doomed])))
    for path in paths:  # files go only once their rows are gone
        path.unlink(missing_ok=True)
    return len(paths)


def take_scheduled(shooter: Shooter, now: datetime | None = None) -> list[int]:
    """The meal-window schedule: one snapshot of every camera in a room shown to parents of
    each live centre that is in a meal window now. A camera that cannot be reached is skipped
    (its status already says so). Returns the ids of the snapshots taken."""
    from app.models import Centre, CentreStatus
    from app.services.centres import in_meal_window

    now = now or utcnow()
    wanted = [
        camera.id
        for centre in db.session.scalars(select(Centre).where(Centre.status == CentreStatus.LIVE))
        if in_meal_window(centre, now)
        for camera in centre.cameras
        if camera.is_enabled and camera.area.shown_to_parents
    ]
    taken = []
    for camera_id in wanted:
        try:
            taken.append(take(None, camera_id, SnapshotReason.SCHEDULE, shooter).id)
        except UpstreamError:
            current_app.logger.info("scheduled snapshot skipped: camera %s unreachable", camera_id)
    return taken
