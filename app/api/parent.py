"""What parents (家长) do: bind to a centre with an invite code, open its page, report a concern
and follow what became of it. Any parent account works: the mini-program's (`/auth/wxa`) or
the demo parent's."""

from __future__ import annotations

from flask import Response, request, send_file
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.api.forms import photos_from_form
from app.api.schemas import MAX_ID, NO_NUL_PATTERN
from app.api.schemas_parents import (
    BindIn,
    ConcernForm,
    ParentCentrePageOut,
    ParentConcernOut,
    ParentLinkOut,
    ParentProfileIn,
    ParentProfileOut,
)
from app.api.security import auth_required, current_user
from app.errors import Unprocessable
from app.models import Attachment, Role
from app.services import concerns, parents, uploads

blp = Blueprint("parent", __name__, description="家长：绑定托管机构、查看后厨、反映问题")

PARENT = (Role.PARENT,)
ROW_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


@blp.get("/me")
@auth_required(*PARENT)
@blp.response(200, ParentProfileOut)
def profile():
    """The parent's own details."""
    return current_user()


@blp.patch("/me")
@auth_required(*PARENT)
@blp.arguments(ParentProfileIn)
@blp.response(200, ParentProfileOut)
@blp.alt_response(422, response="Unprocessable")
def update_profile(body: dict):
    """Give, change or clear (empty string or null) your mobile number, so that the inspectors
    handling your concerns can call you back. Operators never see it."""
    return parents.set_phone(current_user(), body["phone"])


@blp.post("/bind")
@auth_required(*PARENT)
@blp.arguments(BindIn)
@blp.response(201, ParentLinkOut)
@blp.alt_response(
    200, schema=ParentLinkOut, description="已绑定过该机构（不消耗邀请码次数）", success=True
)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(409, response="Conflict")
@blp.alt_response(429, response="TooManyRequests")
def bind(body: dict):
    """Bind to a centre with its invite code (typed, or from the centre's QR code). Unknown,
    expired, used-up and revoked codes are refused; repeated failures lock binding for a while."""
    binding = parents.bind(current_user(), body["code"], request.remote_addr)
    return binding.link, 201 if binding.created else 200


@blp.get("/centres")
@auth_required(*PARENT)
@blp.response(200, ParentLinkOut(many=True))
def linked_centres():
    """The centres the parent is linked to."""
    return parents.linked_centres(current_user())


@blp.get("/centres/<int:centre_id>")
@auth_required(*PARENT)
@blp.response(200, ParentCentrePageOut)
@blp.alt_response(404, response="NotFound")
def centre_page(centre_id: int):
    """A linked centre's page: rooms as tiles (cameras, whether they can be watched now, the
    meal windows), today's snapshots of the rooms shown to parents, the inspection record."""
    return parents.centre_page(current_user(), centre_id)


@blp.delete("/centres/<int:centre_id>")
@auth_required(*PARENT)
@blp.response(204)
@blp.alt_response(404, response="NotFound")
def unlink(centre_id: int):
    """Stop following a centre."""
    parents.unlink(current_user(), centre_id)


def _concern_form() -> dict:
    try:
        return ConcernForm().load(request.form.to_dict())
    except ValidationError as exc:
        messages = exc.normalized_messages()
        field = next(iter(messages), None) if isinstance(messages, dict) else None
        raise Unprocessable("内容未通过校验", field=field, fields=messages) from exc


@blp.post("/concerns")
@auth_required(*PARENT)
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["centre_id", "text", "client_key"],
                    "additionalProperties": False,
                    "properties": {
                        "centre_id": ROW_ID,
                        "text": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": concerns.MAX_TEXT,
                            "pattern": NO_NUL_PATTERN,
                        },
                        "client_key": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": NO_NUL_PATTERN,
                        },
                        "area_id": ROW_ID,
                        "anonymous": {"type": "boolean"},
                        "photos": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": concerns.MAX_PHOTOS,
                        },
                    },
                }
            }
        },
    }
)
@blp.response(201, ParentConcernOut)
@blp.alt_response(
    200, schema=ParentConcernOut, description="同一提交编号已提交过（未重复创建）", success=True
)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(422, response="Unprocessable")
@blp.alt_response(429, response="TooManyRequests")
def submit_concern():
    """Report a concern about a linked centre: text, optionally the room, up to 9 photos
    (JPG/PNG/WebP), optionally anonymous to the operator. A retry with the same `client_key`
    returns the concern already made (200) and creates nothing."""
    photos = photos_from_form()
    form = _concern_form()
    data = concerns.ConcernInput(
        centre_id=form["centre_id"],
        text=form["text"],
        client_key=form["client_key"],
        area_id=form["area_id"],
        anonymous=form["anonymous"],
    )
    submitted = concerns.submit(current_user(), data, photos)
    return submitted.view, 201 if submitted.created else 200


@blp.get("/concerns")
@auth_required(*PARENT)
@blp.response(200, ParentConcernOut(many=True))
def list_concerns():
    """The parent's own concerns, newest first, with status, clocks and answers."""
    return concerns.list_for_parent(current_user())


@blp.get("/concerns/<int:concern_id>")
@auth_required(*PARENT)
@blp.response(200, ParentConcernOut)
@blp.alt_response(404, response="NotFound")
def get_concern(concern_id: int):
    """One of the parent's concerns with its history."""
    return concerns.get_for_parent(current_user(), concern_id)


@blp.get("/concerns/<int:concern_id>/photos/<int:photo_id>")
@auth_required(*PARENT)
@blp.response(200, description="照片", content_type="image/*")
@blp.alt_response(404, response="NotFound")
def concern_photo(concern_id: int, photo_id: int):
    attachment = concerns.photo(current_user(), concern_id, photo_id)
    return _photo_response(attachment)


def _photo_response(attachment: Attachment) -> Response:
    response = send_file(uploads.open_attachment(attachment), mimetype=attachment.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
