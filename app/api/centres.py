"""Centres as every signed-in role sees them, within that role's scope."""

from __future__ import annotations

from flask import current_app, send_file
from flask_smorest import Blueprint

from app.api.schemas import (
    CameraOut,
    CentreOut,
    CentreRecordOut,
    SnapshotIn,
    SnapshotOut,
    WatchOut,
)
from app.api.security import auth_required, current_user
from app.errors import NotFound
from app.models import Role
from app.services import centres as centre_service
from app.services import snapshots as snapshot_service
from app.services import watch as watch_service

blp = Blueprint("centres", __name__, description="托管机构（按角色范围可见）")


@blp.get("/centres")
@auth_required()
@blp.response(200, CentreOut(many=True))
def list_centres():
    """Centres the user may see: linked (parent), own (operator), jurisdiction (inspector),
    assigned (technician), all (admin)."""
    return centre_service.list_centres(current_user())


@blp.get("/centres/<int:centre_id>")
@auth_required()
@blp.response(200, CentreOut)
@blp.alt_response(404, response="NotFound")
def get_centre(centre_id: int):
    return centre_service.get_centre(current_user(), centre_id)


@blp.get("/centres/<int:centre_id>/cameras")
@auth_required()
@blp.response(200, CameraOut(many=True))
@blp.alt_response(404, response="NotFound")
def list_cameras(centre_id: int):
    """The centre's cameras (parents: rooms shown to parents only). Never the stream URL."""
    return centre_service.cameras_for(current_user(), centre_id)


@blp.get("/centres/<int:centre_id>/record")
@auth_required()
@blp.response(200, CentreRecordOut)
@blp.alt_response(404, response="NotFound")
def centre_record(centre_id: int):
    """The centre's inspection record: a summary for parents, the full lists for staff."""
    return centre_service.centre_record(current_user(), centre_id)


@blp.post("/cameras/<int:camera_id>/watch")
@auth_required()
@blp.response(200, WatchOut)
@blp.alt_response(404, response="NotFound")
def watch(camera_id: int):
    """A short-lived signed HLS playlist URL for the camera, or 403 with the reason (not your
    centre / room not shown to parents / outside the meal window / live view suspended)."""
    return watch_service.start_watch(current_user(), camera_id)


@blp.post("/cameras/<int:camera_id>/snapshots")
@auth_required(Role.INSPECTOR, Role.OPERATOR, Role.TECHNICIAN, Role.ADMIN)
@blp.arguments(SnapshotIn, required=False)
@blp.response(201, SnapshotOut)
@blp.alt_response(502, response="UpstreamError")
def take_snapshot(body: dict, camera_id: int):
    """Capture one JPEG now (from the running stream when there is one), stored with its
    SHA-256 and checked for a covered (black) or frozen picture."""
    shooter = current_app.extensions["bk_snapshot"]
    return snapshot_service.take(
        current_user(), camera_id, body["reason"], shooter, body["patrol_id"]
    )


@blp.get("/snapshots/<int:snapshot_id>/image")
@auth_required()
@blp.response(200, description="JPEG", content_type="image/jpeg")
def snapshot_image(snapshot_id: int):
    snapshot = snapshot_service.readable(current_user(), snapshot_id)
    path = snapshot_service.snapshot_path(snapshot)
    if not path.is_file():
        raise NotFound("抓拍文件已清理")
    response = send_file(path, mimetype="image/jpeg", max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
