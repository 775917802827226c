"""Administration: the statutory working-day calendar and the commissioning standard."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.schemas import StrictSchema, Text
from app.api.security import auth_required, current_user
from app.models import ChecklistItemKind, Role
from app.services import calendar, onboarding

blp = Blueprint("admin", __name__, description="管理员")


class CalendarYearIn(StrictSchema):
    holidays = fields.List(fields.Date(), required=True, validate=validate.Length(max=60))
    workdays = fields.List(fields.Date(), required=True, validate=validate.Length(max=30))


@blp.put("/calendar/<int:year>")
@auth_required(Role.ADMIN)
@blp.arguments(CalendarYearIn)
@blp.response(200)
@blp.alt_response(422, response="Unprocessable")
def set_calendar_year(body: dict, year: int):
    """Enter a year's statutory holidays and adjusted workdays as the State Council publishes
    them; deadlines falling in that year stop being provisional."""
    return calendar.publish_year(current_user(), year, body["holidays"], body["workdays"])


class ChecklistItemIn(StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,31}$", error="编码须为小写字母、数字和下划线"),
    )
    title = Text(required=True, validate=validate.Length(min=1, max=128))
    kind = fields.Enum(ChecklistItemKind, by_value=True, required=True)
    required = fields.Boolean(load_default=True)
    rule = fields.Dict(keys=fields.String(), load_default=dict)
    guidance = Text(load_default="", validate=validate.Length(max=2000))


class StandardIn(StrictSchema):
    version = Text(required=True, validate=validate.Length(min=1, max=32))
    title = Text(required=True, validate=validate.Length(min=1, max=128))
    items = fields.List(
        fields.Nested(ChecklistItemIn), required=True, validate=validate.Length(min=1, max=60)
    )


class ChecklistItemOut(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    kind = fields.String(attribute="kind.value")
    required = fields.Boolean()
    rule = fields.Dict(allow_none=True)
    guidance = fields.String()


class StandardOut(Schema):
    id = fields.Integer()
    version = fields.String()
    title = fields.String()
    items = fields.List(fields.Nested(ChecklistItemOut))


@blp.get("/checklist-standard")
@auth_required(Role.ADMIN)
@blp.response(200, StandardOut)
def get_standard():
    """The commissioning standard new commissionings start with."""
    return onboarding.active_standard()


@blp.post("/checklist-standards")
@auth_required(Role.ADMIN)
@blp.arguments(StandardIn)
@blp.response(201, StandardOut)
@blp.alt_response(409, response="Conflict")
@blp.alt_response(422, response="Unprocessable")
def publish_standard(body: dict):
    """Publish a new version of the standard (逐项检查规范); commissionings already running
    keep the version they started with."""
    return onboarding.publish_standard(
        current_user(), body["version"], body["title"], body["items"]
    )
