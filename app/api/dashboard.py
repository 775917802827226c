"""The inspectors' dashboard (counts computed by app/services/dashboard.py)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.security import auth_required, current_user
from app.models import Role
from app.services import dashboard as dashboard_service

blp = Blueprint("dashboard", __name__, description="监管看板（统计，只读）")


class RecentFindingOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    centre_name = fields.String()
    area_name = fields.String(allow_none=True)
    category = fields.String()
    severity = fields.String()
    description = fields.String()
    recorded_at = fields.DateTime()


class DashboardOut(Schema):
    centres = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "托管机构数，按状态（invited/installing/…/suspended）"},
    )
    cameras = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "已启用的摄像头数，按当前状态（online/offline/…）"},
    )
    notices = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "整改通知数，按状态（草稿与撤回除外）"},
    )
    notices_open = fields.Integer()
    notices_overdue = fields.Integer()
    notices_awaiting_review = fields.Integer()
    recent_findings = fields.List(fields.Nested(RecentFindingOut))


@blp.get("/dashboard")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.response(200, DashboardOut)
def dashboard():
    """Centres by status, cameras by status now, notices by status (open, overdue, awaiting
    review) and the latest findings — for the inspector's jurisdiction (admins: everything)."""
    return dashboard_service.summary(current_user())
