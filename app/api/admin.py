"""Administration: the statutory working-day calendar."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.schemas import StrictSchema
from app.api.security import auth_required, current_user
from app.models import Role
from app.services import calendar

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
