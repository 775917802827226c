"""Parents' concerns as the staff see them: the operator of the centre (reading, with the
reporter hidden when anonymous) and the inspectors of its jurisdiction, who triage them."""

from __future__ import annotations

from flask import send_file
from flask_smorest import Blueprint

from app.api.schemas_parents import (
    AcceptIn,
    ConcernListArgs,
    DismissIn,
    ResolveIn,
    StaffConcernOut,
)
from app.api.security import auth_required, current_user
from app.models import Role
from app.services import concerns, uploads

blp = Blueprint("concerns", __name__, description="家长反映（经营者查看，监管人员受理）")

READERS = (Role.OPERATOR, Role.INSPECTOR, Role.ADMIN)
INSPECTOR = (Role.INSPECTOR,)


@blp.get("/concerns")
@auth_required(*READERS)
@blp.arguments(ConcernListArgs, location="query")
@blp.response(200, StaffConcernOut(many=True))
@blp.alt_response(404, response="NotFound")
def list_concerns(args: dict):
    """Operators: concerns about their centre. Inspectors: their jurisdiction's. Open ones
    first, nearest clock first; `overdue=true` lists only those past a clock."""
    return concerns.list_for_staff(
        current_user(), args["centre_id"], args["status"], args["overdue"]
    )


@blp.get("/concerns/<int:concern_id>")
@auth_required(*READERS)
@blp.response(200, StaffConcernOut)
@blp.alt_response(404, response="NotFound")
def get_concern(concern_id: int):
    return concerns.get_for_staff(current_user(), concern_id)


@blp.get("/concerns/<int:concern_id>/photos/<int:photo_id>")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.response(200, description="照片", content_type="image/*")
@blp.alt_response(404, response="NotFound")
def concern_photo(concern_id: int, photo_id: int):
    attachment = concerns.photo(current_user(), concern_id, photo_id)
    response = send_file(uploads.open_attachment(attachment), mimetype=attachment.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blp.post("/inspector/concerns/<int:concern_id>/accept")
@auth_required(*INSPECTOR)
@blp.arguments(AcceptIn, required=False)
@blp.response(200, StaffConcernOut)
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def accept(body: dict, concern_id: int):
    """Accept the concern (受理), assigned to yourself or a colleague of your agency."""
    return concerns.accept(current_user(), concern_id, body["assignee_id"], body["note"])


@blp.post("/inspector/concerns/<int:concern_id>/dismiss")
@auth_required(*INSPECTOR)
@blp.arguments(DismissIn)
@blp.response(200, StaffConcernOut)
@blp.alt_response(409, response="Conflict")
def dismiss(body: dict, concern_id: int):
    """Refuse it (不予受理) with the reason the parent will read."""
    return concerns.dismiss(current_user(), concern_id, body["reason"])


@blp.post("/inspector/concerns/<int:concern_id>/resolve")
@auth_required(*INSPECTOR)
@blp.arguments(ResolveIn)
@blp.response(200, StaffConcernOut)
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def resolve(body: dict, concern_id: int):
    """Close an accepted concern (办结) with the answer the parent will read, optionally linking
    the findings and notices of the centre it led to."""
    return concerns.resolve(
        current_user(),
        concern_id,
        body["answer"],
        tuple(body["finding_ids"]),
        tuple(body["notice_ids"]),
    )
