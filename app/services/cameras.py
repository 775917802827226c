"""Registering cameras; their stream URLs (with credentials) are encrypted at rest."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select

from app.errors import Unprocessable
from app.extensions import db
from app.models import Camera, CameraStatus, KitchenArea, User, utcnow
from app.secrets import decrypt_secret, encrypt_secret, redact_url
from app.services import audit
from app.services.base import publish, transaction
from app.services.scope import Access, require_centre

# rtsp(s) for real cameras; sim:// is the built-in simulated kitchen of the embedded default.
STREAM_SCHEMES = ("rtsp", "rtsps", "sim")


def validate_stream_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in STREAM_SCHEMES or not parts.hostname:
        raise Unprocessable("视频流地址须为 rtsp:// 地址", field="rtsp_url")
    if len(url) > 1024:
        raise Unprocessable("视频流地址过长", field="rtsp_url")
    return url


def register_camera(user: User, centre_id: int, area_id: int, name: str, rtsp_url: str) -> Camera:
    url = validate_stream_url(rtsp_url)
    with transaction():
        centre = require_centre(user, centre_id, Access.MANAGE)
        area = db.session.scalar(
            select(KitchenArea).where(KitchenArea.id == area_id, KitchenArea.centre_id == centre.id)
        )
        if area is None:
            raise Unprocessable("该区域不属于此托管机构", field="area_id")
        camera = Camera(
            centre_id=centre.id,
            area_id=area.id,
            name=name.strip() or area.name,
            rtsp_url_encrypted=encrypt_secret(url),
            rtsp_url_redacted=redact_url(url),
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


def stream_url(camera: Camera) -> str:
    """The camera's real URL, credentials included: for the media supervisor only."""
    return decrypt_secret(camera.rtsp_url_encrypted)


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
            publish(
                "camera.status",
                camera_id=camera.id,
                centre_id=camera.centre_id,
                status=status.value,
                reason=reason,
                last_frame_at=camera.last_frame_at.isoformat() if camera.last_frame_at else None,
            )
    return changed


def media_sources(node: str | None) -> list[tuple[Camera, str]]:
    """The enabled cameras a media node supervises (its shard; every camera when the node has
    no name or the camera is not assigned) with their real URLs."""
    query = select(Camera).where(Camera.is_enabled.is_(True))
    if node:
        query = query.where((Camera.media_node == node) | Camera.media_node.is_(None))
    return [(camera, stream_url(camera)) for camera in db.session.scalars(query)]
