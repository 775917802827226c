"""Request and response shapes for parents, invite codes and concerns (OpenAPI included).

Concern views are built by the service (what each side may see is a domain rule); these
schemas only declare them, so a field a schema does not list never leaves the server.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.schemas import RowId, StrictSchema, Text
from app.models import ConcernStatus
from app.services import parents
from app.services.concerns import MAX_TEXT

# --- invite codes and links ----------------------------------------------------------------


class InviteCodeIn(StrictSchema):
    max_uses = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=parents.MAX_CODE_USES)
    )
    expires_in_days = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=parents.MAX_CODE_TTL_DAYS),
        metadata={"description": "默认见配置 INVITE_CODE_TTL_DAYS"},
    )


class InviteCodeOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    code = fields.String()
    qr_payload = fields.Function(
        parents.qr_payload, metadata={"description": "二维码内容（绑定页地址，已带邀请码）"}
    )
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    max_uses = fields.Integer()
    uses = fields.Integer()
    revoked_at = fields.DateTime(allow_none=True)
    state = fields.Function(
        lambda c: parents.code_state(c), metadata={"enum": list(parents.CODE_STATES)}
    )
    state_label = fields.Function(lambda c: parents.CODE_STATES[parents.code_state(c)])


class BindIn(StrictSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=64))


class ParentLinkOut(Schema):
    centre_id = fields.Integer()
    centre_name = fields.String(attribute="centre.name")
    centre_status = fields.String(attribute="centre.status.value")
    linked_at = fields.DateTime()


# --- the parent's own details --------------------------------------------------------------


class ParentProfileIn(StrictSchema):
    phone = Text(
        required=True,
        allow_none=True,
        validate=validate.Length(max=20),
        metadata={
            "description": "中国大陆手机号（11 位，1 开头，第二位 3–9；可含空格、短横线或 +86）；"
            "空字符串或 null 表示删除",
            "example": "13800138000",
        },
    )


class ParentProfileOut(Schema):
    id = fields.Integer()
    display_name = fields.String()
    phone = fields.String(
        allow_none=True, metadata={"description": "仅受理您反映的监管人员可见，经营者不可见"}
    )


# --- the parent's centre page --------------------------------------------------------------


class MealWindowTimesOut(Schema):
    label = fields.String()
    text = fields.String(metadata={"example": "11:30–13:00"})
    starts_at = fields.String(metadata={"description": "北京时间 ISO 8601"})
    ends_at = fields.String()


class ParentMealWindowOut(Schema):
    label = fields.String()
    weekday = fields.Integer(allow_none=True)
    text = fields.String(metadata={"example": "11:30–13:00"})


class ParentCameraTileOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    status_label = fields.String()
    can_watch = fields.Boolean(metadata={"description": "此刻能否观看（用餐时段、区域开放）"})
    refusal_reason = fields.String(allow_none=True)
    refusal_message = fields.String(allow_none=True)


class ParentRoomOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()
    cameras = fields.List(fields.Nested(ParentCameraTileOut))


class ParentSnapshotOut(Schema):
    id = fields.Integer()
    camera_id = fields.Integer()
    area_id = fields.Integer()
    area_name = fields.String()
    taken_at = fields.String()
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)


class ParentCentreSummaryOut(Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    status = fields.String()
    suspension_reason = fields.String(allow_none=True)


class ParentCentrePageOut(Schema):
    centre = fields.Nested(ParentCentreSummaryOut)
    in_meal_window = fields.Boolean()
    current_window = fields.Nested(MealWindowTimesOut, allow_none=True)
    next_window = fields.Nested(MealWindowTimesOut, allow_none=True)
    meal_windows = fields.List(fields.Nested(ParentMealWindowOut))
    rooms = fields.List(fields.Nested(ParentRoomOut))
    snapshots_today = fields.List(fields.Nested(ParentSnapshotOut))
    record = fields.Dict(metadata={"description": "检查记录摘要（同 /centres/<id>/record）"})


# --- concerns ------------------------------------------------------------------------------


class ConcernForm(Schema):
    """The multipart form of a new concern (photos come as files named `photos`)."""

    centre_id = RowId(required=True)
    text = Text(required=True, validate=validate.Length(min=1, max=MAX_TEXT))
    client_key = Text(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "客户端生成的提交编号；重试时相同编号不会重复提交"},
    )
    area_id = RowId(load_default=None, allow_none=True)
    anonymous = fields.Boolean(
        load_default=False, metadata={"description": "对经营者匿名（显示为“一位家长”）"}
    )


class ConcernPhotoOut(Schema):
    id = fields.Integer()
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()


class ConcernNoticeOut(Schema):
    id = fields.Integer()
    number = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()


class ParentConcernEventOut(Schema):
    status = fields.String()
    status_label = fields.String()
    at = fields.DateTime()
    reason = fields.String(allow_none=True)


class ConcernBaseOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    centre_name = fields.String()
    area_id = fields.Integer(allow_none=True)
    area_name = fields.String(allow_none=True)
    text = fields.String()
    anonymous = fields.Boolean()
    source = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in ConcernStatus]})
    status_label = fields.String()
    submitted_at = fields.DateTime()
    decide_by = fields.Date(metadata={"description": "受理期限（7 个工作日）"})
    resolve_by = fields.Date(metadata={"description": "办结期限（15 个工作日）"})
    deadline_provisional = fields.Boolean()
    decide_overdue = fields.Boolean()
    resolve_overdue = fields.Boolean()
    overdue = fields.Boolean()
    decided_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    answer = fields.String(allow_none=True, metadata={"description": "不予受理理由或处理结果"})
    photo_count = fields.Integer()


class ParentConcernOut(ConcernBaseOut):
    photos = fields.List(fields.Nested(ConcernPhotoOut))
    notices = fields.List(fields.Nested(ConcernNoticeOut))
    history = fields.List(fields.Nested(ParentConcernEventOut))


class ReporterOut(Schema):
    id = fields.Integer(allow_none=True)
    name = fields.String()
    phone = fields.String(allow_none=True)


class StaffPersonOut(Schema):
    id = fields.Integer()
    name = fields.String()


class StaffConcernEventOut(Schema):
    actor_id = fields.Integer(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    status_label = fields.String()
    at = fields.DateTime()
    reason = fields.String(allow_none=True)


class StaffConcernOut(ConcernBaseOut):
    """Operators get `reporter` without id or phone (only "一位家长" when anonymous) and no
    photos, findings, notices or assignee; inspectors get them all."""

    reporter = fields.Nested(ReporterOut)
    assignee = fields.Nested(StaffPersonOut, allow_none=True)
    photos = fields.List(fields.Nested(ConcernPhotoOut))
    finding_ids = fields.List(fields.Integer())
    notices = fields.List(fields.Nested(ConcernNoticeOut))
    history = fields.List(fields.Nested(StaffConcernEventOut))


class ConcernListArgs(Schema):
    centre_id = RowId(load_default=None)
    status = fields.Enum(ConcernStatus, by_value=True, load_default=None)
    overdue = fields.Boolean(load_default=False)


class AcceptIn(StrictSchema):
    assignee_id = RowId(
        load_default=None, allow_none=True, metadata={"description": "默认指派给自己"}
    )
    note = Text(load_default="", validate=validate.Length(max=2000))


class DismissIn(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class ResolveIn(StrictSchema):
    answer = Text(required=True, validate=validate.Length(min=1, max=4000))
    finding_ids = fields.List(RowId(), load_default=list, validate=validate.Length(max=50))
    notice_ids = fields.List(RowId(), load_default=list, validate=validate.Length(max=20))
