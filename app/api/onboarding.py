"""Onboarding and commissioning: invitations, installation, the itemised checklist, sign-off,
suspension, and the coverage figures."""

from __future__ import annotations

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.forms import photos_from_form
from app.api.schemas import (
    NO_NUL_PATTERN,
    CameraChangeIn,
    CameraIn,
    CameraSetupOut,
    CentreHistoryOut,
    RowId,
    StrictSchema,
    Text,
    refuse_nul,
)
from app.api.security import auth_required, current_user
from app.errors import Unprocessable
from app.models import Role
from app.services import cameras, coverage, onboarding

blp = Blueprint("onboarding", __name__, description="机构入驻、安装调试与逐项检查")


class InviteIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=128))
    district_id = RowId(required=True)
    agency_id = RowId(
        load_default=None,
        metadata={
            "description": "发出倡议的监管部门：监管人员只能是本单位；"
            "管理员不填时取该区的市场监管部门"
        },
    )
    address = Text(load_default="", validate=validate.Length(max=255))
    letter = Text(load_default="", validate=validate.Length(max=8000))


class SuspensionIn(StrictSchema):
    reason = Text(load_default="", validate=validate.Length(max=255))


class CentreStateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String(attribute="status.value")
    suspension_reason = fields.String(allow_none=True)


@blp.post("/centres/invitations")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.arguments(InviteIn)
@blp.response(201, CentreStateOut)
@blp.alt_response(422, response="Unprocessable")
def invite(body: dict):
    """Send a centre the invitation letter (倡议书); it starts as 已发倡议."""
    return onboarding.invite_centre(
        current_user(),
        body["name"],
        body["district_id"],
        body["address"],
        body["letter"],
        body["agency_id"],
    )


@blp.get("/centres/<int:centre_id>/history")
@auth_required(Role.INSPECTOR, Role.TECHNICIAN, Role.ADMIN)
@blp.response(200, CentreHistoryOut)
@blp.alt_response(404, response="NotFound")
def centre_history(centre_id: int):
    """The centre's invitation (agency, sent when and by whom, accepted when) and its status
    history (who, when, from, to, why)."""
    return onboarding.centre_history(current_user(), centre_id)


@blp.post("/centres/<int:centre_id>/installation")
@auth_required(Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN)
@blp.response(200, CentreStateOut)
@blp.alt_response(409, response="Conflict")
def start_installation(centre_id: int):
    return onboarding.start_installation(current_user(), centre_id)


@blp.get("/centres/<int:centre_id>/camera-setup")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.response(200, CameraSetupOut(many=True))
@blp.alt_response(404, response="NotFound")
def list_installed_cameras(centre_id: int):
    """Every camera of the centre with its address (no credentials) and last probe."""
    return cameras.installed_cameras(current_user(), centre_id)


@blp.post("/centres/<int:centre_id>/cameras")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.arguments(CameraIn)
@blp.response(201, CameraSetupOut)
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def register_camera(body: dict, centre_id: int):
    """Register a room's camera by its RTSP address; credentials are kept encrypted and never
    shown again."""
    return cameras.register_camera(
        current_user(), centre_id, body["area_id"], body["name"], body["rtsp_url"]
    )


@blp.patch("/cameras/<int:camera_id>")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.arguments(CameraChangeIn)
@blp.response(200, CameraSetupOut)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def update_camera(body: dict, camera_id: int):
    """Rename a camera, move it to another room, give it a new address or switch it off."""
    return cameras.update_camera(current_user(), camera_id, **body)


@blp.post("/centres/<int:centre_id>/commissioning")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.response(201)
@blp.alt_response(409, response="Conflict")
def start_commissioning(centre_id: int):
    onboarding.start_commissioning(current_user(), centre_id)
    return onboarding.checklist(current_user(), centre_id)


@blp.get("/centres/<int:centre_id>/checklist")
@auth_required(Role.TECHNICIAN, Role.OPERATOR, Role.INSPECTOR, Role.ADMIN)
@blp.response(200)
def get_checklist(centre_id: int):
    """Every item of the standard with its latest result, and what still blocks going live."""
    return onboarding.checklist(current_user(), centre_id)


@blp.post("/centres/<int:centre_id>/checklist/automatic")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.response(200)
def run_automatic(centre_id: int):
    """Probe every camera and judge the automatic items (codec, resolution, fps, GOP…)."""
    prober = current_app.extensions["bk_prober"]
    return onboarding.run_automatic_checks(current_user(), centre_id, prober)


@blp.post("/centres/<int:centre_id>/checklist/items/<int:item_id>")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.doc(
    requestBody={
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "note": {"type": "string", "maxLength": 2000, "pattern": NO_NUL_PATTERN},
                        "photos": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            }
        }
    }
)
@blp.response(200)
@blp.alt_response(422, response="Unprocessable")
def record_manual(centre_id: int, item_id: int):
    """Evidence for a manual item: photos (signage, angle, signed statement) or a note."""
    note = request.form.get("note", "")
    if len(note) > 2000:
        raise Unprocessable("说明最多 2000 字", field="note")
    refuse_nul(note, "note")
    photos = photos_from_form()
    return onboarding.record_manual(current_user(), centre_id, item_id, note, photos)


@blp.post("/centres/<int:centre_id>/sign-off")
@auth_required(Role.TECHNICIAN, Role.ADMIN)
@blp.response(200, CentreStateOut)
@blp.alt_response(409, response="Conflict")
def sign_off(centre_id: int):
    """Sign the checklist: the centre goes live if every required item passed (409 lists
    what still blocks)."""
    return onboarding.sign_off(current_user(), centre_id)


@blp.post("/centres/<int:centre_id>/suspension")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.arguments(SuspensionIn)
@blp.response(200, CentreStateOut)
@blp.alt_response(409, response="Conflict")
def suspend(body: dict, centre_id: int):
    """Suspend a live centre: parents' live view stops with the reason shown."""
    return onboarding.suspend(current_user(), centre_id, body["reason"])


@blp.delete("/centres/<int:centre_id>/suspension")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.response(200, CentreStateOut)
@blp.alt_response(409, response="Conflict")
def reinstate(centre_id: int):
    return onboarding.reinstate(current_user(), centre_id)


@blp.get("/coverage")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.response(200)
def get_coverage():
    """Coverage figures of the user's jurisdiction (all for admins)."""
    return coverage.coverage(current_user())
