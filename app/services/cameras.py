"""Registering cameras; their stream URLs (with credentials) are encrypted at rest."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from app.errors import Unprocessable
from app.extensions import db
from app.models import Camera, KitchenArea, User
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
