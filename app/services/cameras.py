"""Registering cameras; their stream URLs (with credentials) are encrypted at rest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from app.errors import Conflict, NotFound, Unprocessable
from app.extensions import db
from app.models import Camera, CameraStatus, Centre, KitchenArea, Role, User, utcnow
from app.secrets import decrypt_secret, encrypt_secret, redact_url
from app.services import audit
from app.services.base import publish, transaction
from app.services.scope import Access, regulators_of, require_centre, require_role

# rtsp(s) for real cameras; sim:// is the built-in simulated kitchen of the embedded default.
STREAM_SCHEMES = ("rtsp", "rtsps", "sim")
# The redacted form (rtsp_url_redacted, 512 characters) may be a little longer than the URL.
MAX_URL_LENGTH = 480


def validate_stream_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number in 0–65535
    except ValueError as exc:
        raise Unprocessable("视频流地址格式不正确", field="rtsp_url") from exc
    if parts.scheme not in STREAM_SCHEMES or not parts.hostname:
        raise Unprocessable("视频流地址须为 rtsp:// 地址", field="rtsp_url")
    if len(url) > MAX_URL_LENGTH:
        raise Unprocessable("视频流地址过长", field="rtsp_url")
    return url


def _stream_key(url: str) -> tuple[str, str, int | None, str, str]:
    """What identifies a stream whatever credentials reach it: scheme, host, port, path,
    query (from a redacted URL, which keeps all of these)."""
    parts = urlsplit(url)
    return (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        parts.port,
        parts.path or "/",
        parts.query,
    )


def _require_installer(user: User, centre_id: int) -> Centre:
    """Cameras are registered by the centre's technician (or an admin)."""
    require_role(user, Role.TECHNICIAN, Role.ADMIN)
    return require_centre(user, centre_id, Access.MANAGE)


def _area_of(centre: Centre, area_id: int) -> KitchenArea:
    area = db.session.scalar(
        select(KitchenArea).where(KitchenArea.id == area_id, KitchenArea.centre_id == centre.id)
    )
    if area is None:
        raise Unprocessable("该区域不属于此托管机构", field="area_id")
    return area


def _refuse_same_stream(centre: Centre, redacted: str, camera_id: int | None = None) -> None:
    """One stream is one camera: registering it again for another room would make that room
    look covered when nothing films it."""
    key = _stream_key(redacted)
    for other in db.session.scalars(select(Camera).where(Camera.centre_id == centre.id)):
        if other.id != camera_id and _stream_key(other.rtsp_url_redacted) == key:
            raise Conflict(
                f"该视频流已登记为「{other.area.name} · {other.name}」，同一路视频流不能重复登记",
                field="rtsp_url",
                camera_id=other.id,
            )


def register_camera(user: User, centre_id: int, area_id: int, name: str, rtsp_url: str) -> Camera:
    """A technician registers a room's camera by its RTSP address (credentials included, kept
    encrypted). It shows as status unknown until the media node reaches it."""
    url = validate_stream_url(rtsp_url)
    with transaction():
        centre = _require_installer(user, centre_id)
        area = _area_of(centre, area_id)
        redacted = redact_url(url)
        _refuse_same_stream(centre, redacted)
        camera = Camera(
            centre_id=centre.id,
            area_id=area.id,
            name=name.strip() or area.name,
            rtsp_url_encrypted=encrypt_secret(url),
            rtsp_url_redacted=redacted,
        )
        db.session.add(camera)
        db.session.flush()
        audit.record(
            "camera.registered",
            actor_id=user.id,
            object_type="camera",
            object_id=camera.id,
            url=camera.rtsp_url_redacted,
        )
        publish("camera.registered", camera_id=camera.id, centre_id=centre.id)
    return camera


def update_camera(
    user: User,
    camera_id: int,
    *,
    name: str | None = None,
    area_id: int | None = None,
    rtsp_url: str | None = None,
    enabled: bool | None = None,
) -> Camera:
    """Rename, move to another room, point at a new address or switch a camera off. A new
    address forgets the old probe and status: the camera must be reached and probed again."""
    url = validate_stream_url(rtsp_url) if rtsp_url is not None else None
    with transaction():
        camera = db.session.get(Camera, camera_id)
        if camera is None:
            raise NotFound("找不到该摄像头")
        centre = _require_installer(user, camera.centre_id)
        changed: dict[str, object] = {}
        if area_id is not None and area_id != camera.area_id:
            camera.area_id = _area_of(centre, area_id).id
            changed["area_id"] = camera.area_id
        if name is not None and name.strip() and name.strip() != camera.name:
            camera.name = name.strip()
            changed["name"] = camera.name
        if url is not None and url != stream_url(camera):
            redacted = redact_url(url)
            _refuse_same_stream(centre, redacted, camera.id)
            camera.rtsp_url_encrypted = encrypt_secret(url)
            camera.rtsp_url_redacted = redacted
            camera.probe = camera.probed_at = None
            camera.status, camera.status_changed_at = CameraStatus.UNKNOWN, utcnow()
            camera.last_frame_at = None
            changed["url"] = redacted
        if enabled is not None and enabled != camera.is_enabled:
            camera.is_enabled = enabled
            changed["enabled"] = enabled
        if changed:
            audit.record(
                "camera.updated",
                actor_id=user.id,
                object_type="camera",
                object_id=camera.id,
                **changed,
            )
            publish("camera.updated", camera_id=camera.id, centre_id=centre.id)
    return camera


def installed_cameras(user: User, centre_id: int) -> list[Camera]:
    """Every camera of the centre, switched off ones included, for the people installing them."""
    centre = _require_installer(user, centre_id)
    return list(
        db.session.scalars(
            select(Camera).where(Camera.centre_id == centre.id).order_by(Camera.area_id, Camera.id)
        )
    )


def stream_url(camera: Camera) -> str:
    """The camera's real URL, credentials included: for the media supervisor only."""
    return decrypt_secret(camera.rtsp_url_encrypted)


def audience(camera: Camera) -> dict[str, Any]:
    """Who a camera's realtime events are for, beyond the centre's staff: the agencies that
    regulate the centre, and its parents only when the camera's room is shown to them."""
    return {
        "agency_ids": [agency.id for agency in regulators_of(camera.centre)],
        "shown_to_parents": camera.area.shown_to_parents,
    }


def record_status(
    camera_id: int,
    status: CameraStatus,
    *,
    last_frame_at: datetime | None,
    reconnects_last_hour: int,
    reason: str = "",
) -> bool:
    """What the media supervisor saw: a status change (online, offline, stalled, tampered) is
    written to the camera and published; returns False when nothing changed."""
    with transaction():
        camera = db.session.get(Camera, camera_id)
        if camera is None:
            return False
        changed = camera.status is not status
        if last_frame_at is not None:
            camera.last_frame_at = last_frame_at
        camera.reconnects_last_hour = reconnects_last_hour
        if changed:
            camera.status = status
            camera.status_changed_at = utcnow()
            if status in ALERT_STATUSES:
                alert_operators(camera, reason)
            publish(
                "camera.status",
                camera_id=camera.id,
                centre_id=camera.centre_id,
                status=status.value,
                reason=reason,
                last_frame_at=camera.last_frame_at.isoformat() if camera.last_frame_at else None,
                **audience(camera),
            )
    return changed


def record_reconnects(counts: dict[int, int]) -> None:
    """The media supervisor's ffmpeg restarts of the last hour, per camera id (every restart,
    not only those that changed a status): one transaction, no events."""
    if not counts:
        return
    with transaction():
        for camera in db.session.scalars(select(Camera).where(Camera.id.in_(counts))):
            camera.reconnects_last_hour = counts[camera.id]


def media_sources(node: str | None) -> list[tuple[Camera, str]]:
    """The enabled cameras a media node supervises, with their real URLs: those it holds
    (app/services/media_nodes.py), or every one for the embedded default's unnamed node."""
    query = select(Camera).where(Camera.is_enabled.is_(True))
    if node:
        query = query.where(Camera.media_node == node)
    return [(camera, stream_url(camera)) for camera in db.session.scalars(query)]


# A camera in one of these states shows parents and regulators nothing useful.
ALERT_STATUSES = (CameraStatus.OFFLINE, CameraStatus.STALLED, CameraStatus.TAMPERED)
ALERT_LABELS = {
    CameraStatus.OFFLINE: "离线",
    CameraStatus.STALLED: "画面卡住",
    CameraStatus.TAMPERED: "画面异常",
}


def _alert_payload(camera: Camera, reason: str) -> dict:
    return {
        "camera_id": camera.id,
        "centre_id": camera.centre_id,
        "camera_name": camera.name,
        "area_name": camera.area.name,
        "status": camera.status.value,
        "status_label": ALERT_LABELS.get(camera.status, camera.status.value),
        "since": camera.status_changed_at.isoformat() if camera.status_changed_at else None,
        "reason": reason,
    }


def _outage_counts_from(camera: Camera, now: datetime) -> datetime | None:
    """Since when this camera's outage matters: the later of its status change and the opening
    of the meal window `now` falls in. None when nobody relies on the camera now (outside a
    meal window, or the centre not live)."""
    from app.models import CentreStatus
    from app.services.centres import current_meal_window

    centre = camera.centre
    if centre.status is not CentreStatus.LIVE:
        return None
    window = current_meal_window(centre, now)
    if window is None:
        return None
    return max(camera.status_changed_at, window.starts_at)


def _outage_key(prefix: str, camera: Camera, since: datetime) -> str:
    """One message per outage — and, for an outage older than the meal window, one per window
    (the camera was already bad when the window opened: told again each time one opens)."""
    key = f"{prefix}:{camera.id}:{camera.status_changed_at.isoformat()}"
    return key if since == camera.status_changed_at else f"{key}:w{int(since.timestamp())}"


def _alert_event(camera: Camera) -> str:
    return "camera.tampered" if camera.status is CameraStatus.TAMPERED else "camera.offline"


def _tell_operators(camera: Camera, since: datetime, reason: str) -> bool:
    from app.services import outbox

    key = _outage_key(_alert_event(camera), camera, since)
    payload = _alert_payload(camera, reason)
    told = [
        outbox.notify_user(operator, _alert_event(camera), key, payload)
        for operator in outbox.operators_of(camera.centre_id)
    ]
    return any(row is not None for row in told)


def alert_operators(camera: Camera, reason: str = "") -> None:
    """Inside the caller's transaction: a camera went bad during a meal window → the centre's
    operators are told in chat (once per outage). One that went bad outside a window is told
    when the window opens (`report_at_window_open`)."""
    since = _outage_counts_from(camera, utcnow())
    if since is not None:
        _tell_operators(camera, since, reason)


def report_at_window_open(now: datetime | None = None) -> list[int]:
    """Cameras bad while a meal window is open, whose operators have not been told in this
    window: they are told now. Covers a camera that went offline (or was covered) before the
    window opened — its status does not change at the opening, so `alert_operators` never
    fires for it. Run every minute; idempotent; returns the camera ids reported."""
    now = now or utcnow()
    reported = []
    with transaction():
        for camera in db.session.scalars(
            select(Camera).where(Camera.is_enabled.is_(True), Camera.status.in_(ALERT_STATUSES))
        ):
            since = _outage_counts_from(camera, now)
            if since is not None and _tell_operators(camera, since, "用餐时段开始时仍未恢复"):
                reported.append(camera.id)
    return sorted(reported)


def escalate_persistent_alerts(now: datetime | None = None) -> list[int]:
    """Cameras still bad CAMERA_ALERT_ESCALATE_S into a meal window (counted from the later of
    the outage and the window's opening): the regulators' group robots are told (once per
    outage and window). Idempotent; returns the camera ids escalated."""
    from flask import current_app

    from app.services import outbox
    from app.services.scope import regulators_of

    now = now or utcnow()
    cutoff = now - timedelta(seconds=current_app.config["CAMERA_ALERT_ESCALATE_S"])
    escalated = []
    with transaction():
        for camera in db.session.scalars(
            select(Camera).where(
                Camera.is_enabled.is_(True),
                Camera.status.in_(ALERT_STATUSES),
                Camera.status_changed_at <= cutoff,
            )
        ):
            since = _outage_counts_from(camera, now)
            if since is None or since > cutoff:
                continue
            key = _outage_key("camera.persistent", camera, since)
            payload = _alert_payload(camera, "持续异常，请督促处理")
            for agency in regulators_of(camera.centre):
                if outbox.notify_agency_groups(agency, _alert_event(camera), key, payload):
                    escalated.append(camera.id)
    return sorted(set(escalated))
