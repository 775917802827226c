"""Rectification notices as their two sides see them: the operator who answers and the
inspector who issued them (reading, acknowledging, answering, the printable notice)."""

from __future__ import annotations

from flask import Response, request, send_file
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.forms import photos_from_form
from app.api.schemas import (
    NO_NUL_PATTERN,
    NoticeDetailOut,
    NoticeOut,
    NoticeResponseOut,
    RowId,
    refuse_nul,
)
from app.api.security import auth_required, current_user
from app.errors import Unprocessable
from app.models import Role
from app.services import notices, reports, uploads

blp = Blueprint("notices", __name__, description="整改通知（经营者与监管人员）")

READERS = (Role.OPERATOR, Role.INSPECTOR, Role.ADMIN)


class NoticeListArgs(Schema):
    centre_id = RowId(load_default=None)
    open = fields.Boolean(load_default=False)


@blp.get("/notices")
@auth_required(*READERS)
@blp.arguments(NoticeListArgs, location="query")
@blp.response(200, NoticeOut(many=True))
@blp.alt_response(404, response="NotFound")
def list_notices(args: dict):
    """Operators: their centre's notices. Inspectors: their agency's. Open ones first."""
    return notices.list_notices(current_user(), args["centre_id"], args["open"], with_findings=True)


@blp.get("/notices/<int:notice_id>")
@auth_required(*READERS)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(404, response="NotFound")
def get_notice(notice_id: int):
    return notices.get_notice(current_user(), notice_id)


@blp.get("/notices/<int:notice_id>/notice.pdf")
@auth_required(*READERS)
@blp.response(200, description="责令改正通知书 PDF", content_type="application/pdf")
def notice_pdf(notice_id: int):
    notice = notices.get_notice(current_user(), notice_id)
    filename = f"notice-{notice.id}.pdf"
    return Response(
        reports.notice_pdf(notice),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@blp.get("/notices/<int:notice_id>/photos/<int:photo_id>")
@auth_required(*READERS)
@blp.response(200, description="整改回复的照片", content_type="image/*")
@blp.alt_response(404, response="NotFound")
def response_photo(notice_id: int, photo_id: int):
    """A photo the operator attached to an answer (for the operator and the reviewing
    inspectors; fetched with the bearer token)."""
    attachment = notices.response_photo(current_user(), notice_id, photo_id)
    response = send_file(uploads.open_attachment(attachment), mimetype=attachment.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blp.post("/notices/<int:notice_id>/acknowledge")
@auth_required(Role.OPERATOR)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(409, response="Conflict")
def acknowledge(notice_id: int):
    """The operator confirms receipt (签收)."""
    return notices.acknowledge(current_user(), notice_id)


@blp.post("/notices/<int:notice_id>/responses")
@auth_required(Role.OPERATOR)
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 4000,
                            "pattern": NO_NUL_PATTERN,
                        },
                        "photos": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": notices.MAX_RESPONSE_PHOTOS,
                        },
                    },
                }
            }
        },
    }
)
@blp.response(201, NoticeResponseOut)
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def respond(notice_id: int):
    """Answer a notice with text and photos (JPG/PNG/WebP, each within the size limit)."""
    text = request.form.get("text", "")
    if len(text) > 4000:
        raise Unprocessable("整改情况说明最多 4000 字", field="text")
    refuse_nul(text, "text")
    return notices.respond(current_user(), notice_id, text, photos_from_form())
