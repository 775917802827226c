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


class ConcernClockOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    centre_name = fields.String()
    area_name = fields.String(allow_none=True)
    text = fields.String()
    status = fields.String()
    status_label = fields.String()
    submitted_at = fields.DateTime()
    clock = fields.String(
        metadata={"description": "正在计时的期限：decide（受理）或 resolve（办结）"}
    )
    clock_label = fields.String()
    due = fields.Date()
    deadline_provisional = fields.Boolean()
    overdue = fields.Boolean()


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
    concerns_open = fields.Integer(metadata={"description": "待受理与处理中的家长反映数"})
    concerns_overdue = fields.Integer(metadata={"description": "其中已超过受理或办结期限的数"})
    concerns_on_the_clock = fields.List(
        fields.Nested(ConcernClockOut),
        metadata={"description": "期限最近的未结家长反映（已逾期的在前）"},
    )
    recent_findings = fields.List(fields.Nested(RecentFindingOut))


@blp.get("/dashboard")
@auth_required(Role.INSPECTOR, Role.ADMIN)
@blp.response(200, DashboardOut)
def dashboard():
    """Centres by status, cameras by status now, notices by status (open, overdue, awaiting
    review), parents' concerns on the clock and the latest findings — for the inspector's
    jurisdiction (admins: everything)."""
    return dashboard_service.summary(current_user())
