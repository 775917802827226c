"""Request and response shapes of the JSON API (they also generate the OpenAPI document)."""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from app.errors import Unprocessable
from app.models import (
    AreaCheckResult,
    FindingCategory,
    FollowUpKind,
    PatrolMode,
    ReviewMode,
    Severity,
    SnapshotReason,
)
from app.services.notices import STATUS_LABELS

# Row ids are INTEGER columns (int4 on PostgreSQL): a larger number names no row.
MAX_ID = 2**31 - 1


class RowId(fields.Integer):
    """The id of a row sent in a body or query: refused (422) when no row could have it, rather
    than passed to the database, which fails on numbers its column cannot hold."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


# Text a user sends may hold any character but NUL (U+0000): PostgreSQL text cannot store it,
# so it would fail the lookup or insert it reaches, and no user text needs it.
NO_NUL_PATTERN = r"^[^\x00]*$"
NUL_MESSAGE = "不能包含空字符（U+0000）"


def refuse_nul(value: str, field: str) -> None:
    """For form fields read without a schema: the same rule as `Text`."""
    if "\x00" in value:
        raise Unprocessable(NUL_MESSAGE, field=field)


class Text(fields.String):
    """A string from the user: refused (422) when it holds NUL; documented with the pattern."""

    default_error_messages = {"nul": NUL_MESSAGE}

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs["metadata"] = {"pattern": NO_NUL_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ErrorSchema(Schema):
    """Every error body (app/errors.py): a code and a message for the user, plus the details
    some errors carry (those listed here, and others an error may add)."""

    class Meta:
        unknown = INCLUDE

    error = fields.String(required=True, metadata={"example": "forbidden"})
    message = fields.String(required=True, metadata={"example": "没有权限执行此操作"})
    reason = fields.String(metadata={"description": "更具体的原因代码", "example": "scope"})
    field = fields.String(metadata={"description": "出错的字段"})
    field_errors = fields.Dict(data_key="fields", metadata={"description": "各字段的校验错误"})
    current_status = fields.String(metadata={"description": "对象当前的状态（409 时）"})
    retry_after = fields.Integer(metadata={"description": "多少秒后可以重试（429 时）"})
    blocking = fields.List(fields.String(), metadata={"description": "尚未通过的必检项"})
    stale = fields.List(
        fields.String(), metadata={"description": "自动检测结果已过期、须重新检测的必检项"}
    )
    patrol_id = fields.Integer(metadata={"description": "进行中的巡查（409 时）"})


class LoginIn(StrictSchema):
    username = Text(required=True, validate=validate.Length(min=1, max=64))
    password = Text(required=True, validate=validate.Length(min=1, max=256), load_only=True)


class RefreshIn(StrictSchema):
    refresh_token = Text(required=True, validate=validate.Length(min=1, max=256))


class WxaLoginIn(StrictSchema):
    code = Text(required=True, validate=validate.Length(min=1, max=128))


class UserOut(Schema):
    id = fields.Integer()
    role = fields.String(attribute="role.value")
    display_name = fields.String()
    username = fields.String(allow_none=True)
    agency_id = fields.Integer(allow_none=True)
    centre_id = fields.Integer(allow_none=True)


class TokensOut(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer(required=True)
    user = fields.Nested(UserOut)


# A time of day as the meal windows are written: 24-hour HH:MM, Beijing time.
CLOCK_TIME = {"pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "11:30"}


class MealWindowSchema(StrictSchema):
    label = Text(required=True, validate=validate.Length(min=1, max=32))
    weekday = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=6)
    )
    starts_at = fields.Time(required=True, format="%H:%M", metadata=CLOCK_TIME)
    ends_at = fields.Time(required=True, format="%H:%M", metadata=CLOCK_TIME)


class MealWindowsIn(StrictSchema):
    windows = fields.List(
        fields.Nested(MealWindowSchema), required=True, validate=validate.Length(max=14)
    )


class AreaOut(Schema):
    id = fields.Integer()
    kind = fields.String(attribute="kind.value")
    name = fields.String()
    shown_to_parents = fields.Boolean()


class CentreOut(Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    district = fields.String(attribute="district.name")
    status = fields.String(attribute="status.value")
    suspension_reason = fields.String(allow_none=True)
    meal_windows = fields.List(fields.Nested(MealWindowSchema))
    areas = fields.List(fields.Nested(AreaOut))


class CameraOut(Schema):
    """A camera as the API shows it: never the stream URL or its credentials."""

    id = fields.Integer()
    name = fields.String()
    area_id = fields.Integer()
    area_kind = fields.String(attribute="area.kind.value")
    area_name = fields.String(attribute="area.name")
    status = fields.String(attribute="status.value")
    status_changed_at = fields.DateTime(allow_none=True)
    last_frame_at = fields.DateTime(allow_none=True)


class CameraSetupOut(CameraOut):
    """A camera as the people installing it see it: the stream address without credentials,
    whether it is switched on, and what the last probe measured."""

    address = fields.String(attribute="rtsp_url_redacted")
    enabled = fields.Boolean(attribute="is_enabled")
    probe = fields.Dict(allow_none=True)
    probed_at = fields.DateTime(allow_none=True)


class CameraIn(StrictSchema):
    area_id = RowId(required=True)
    name = Text(load_default="", validate=validate.Length(max=64))
    rtsp_url = Text(required=True, validate=validate.Length(min=1, max=480))


class CameraChangeIn(StrictSchema):
    area_id = RowId()
    name = Text(validate=validate.Length(min=1, max=64))
    rtsp_url = Text(validate=validate.Length(min=1, max=480))
    enabled = fields.Boolean()


# --- patrols, findings, notices ------------------------------------------------------------


class PatrolStartIn(StrictSchema):
    centre_id = RowId(required=True)
    mode = fields.Enum(PatrolMode, by_value=True, required=True)


class AreaCheckIn(StrictSchema):
    result = fields.Enum(AreaCheckResult, by_value=True, required=True)
    note = Text(load_default="", validate=validate.Length(max=2000))
    snapshot_id = RowId(load_default=None, allow_none=True)


class FindingIn(StrictSchema):
    category = fields.Enum(FindingCategory, by_value=True, required=True)
    severity = fields.Enum(Severity, by_value=True, required=True)
    description = Text(required=True, validate=validate.Length(min=1, max=4000))
    area_id = RowId(load_default=None, allow_none=True)
    snapshot_ids = fields.List(RowId(), load_default=list, validate=validate.Length(max=20))


class PatrolEndIn(StrictSchema):
    summary = Text(load_default="", validate=validate.Length(max=4000))


class FindingOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    patrol_id = fields.Integer(allow_none=True)
    area_id = fields.Integer(allow_none=True)
    category = fields.String(attribute="category.value")
    severity = fields.String(attribute="severity.value")
    description = fields.String()
    recorded_at = fields.DateTime()
    snapshot_ids = fields.Function(lambda f: [s.id for s in f.snapshots])


class AreaCheckOut(Schema):
    area_id = fields.Integer()
    result = fields.String(attribute="result.value")
    note = fields.String()
    snapshot_id = fields.Integer(allow_none=True)
    checked_at = fields.DateTime()


class SnapshotOut(Schema):
    id = fields.Integer()
    camera_id = fields.Integer()
    taken_at = fields.DateTime()
    sha256 = fields.String()
    size_bytes = fields.Integer()
    reason = fields.String(attribute="reason.value")
    patrol_id = fields.Integer(allow_none=True)
    image_url = fields.Function(lambda s: f"/api/v1/snapshots/{s.id}/image")


class PatrolOut(Schema):
    id = fields.Integer()
    centre_id = fields.Integer()
    inspector_id = fields.Integer()
    mode = fields.String(attribute="mode.value")
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    summary = fields.String()
    area_checks = fields.List(fields.Nested(AreaCheckOut))
    findings = fields.List(fields.Nested(FindingOut))
    snapshots = fields.List(fields.Nested(SnapshotOut))


class NoticeDraftIn(StrictSchema):
    centre_id = RowId(required=True)
    finding_ids = fields.List(RowId(), required=True, validate=validate.Length(min=1, max=50))
    requirements = Text(required=True, validate=validate.Length(min=1, max=4000))
    legal_basis = Text(load_default="", validate=validate.Length(max=4000))
    deadline = fields.Date(load_default=None, allow_none=True)
    working_days = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=365)
    )


class ReasonIn(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class ReviewIn(StrictSchema):
    mode = fields.Enum(ReviewMode, by_value=True, required=True)
    note = Text(load_default="", validate=validate.Length(max=2000))
    reason = Text(load_default="", validate=validate.Length(max=2000))
    snapshot_id = RowId(load_default=None, allow_none=True)


class FollowUpIn(StrictSchema):
    kind = fields.Enum(FollowUpKind, by_value=True, required=True)
    happened_at = fields.AwareDateTime(required=True, default_timezone=None)
    contact = Text(required=True, validate=validate.Length(min=1, max=128))
    outcome = Text(required=True, validate=validate.Length(min=1, max=4000))


class RespondForm(Schema):
    text = Text(required=True, validate=validate.Length(min=1, max=4000))


class AttachmentOut(Schema):
    id = fields.Integer()
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()


class NoticeResponseOut(Schema):
    id = fields.Integer()
    round = fields.Integer()
    text = fields.String()
    submitted_at = fields.DateTime()
    reviewed_at = fields.DateTime(allow_none=True)
    accepted = fields.Boolean(allow_none=True)
    review_note = fields.String(allow_none=True)
    reviewer_id = fields.Integer(allow_none=True)
    review_mode = fields.Function(
        lambda r: r.review_mode.value if r.review_mode else None,
        metadata={
            "type": "string",
            "nullable": True,
            "enum": [*(m.value for m in ReviewMode), None],
            "description": "本轮复查方式：on_site 现场 / live_video 视频（未复查为空）",
        },
    )
    review_snapshot_id = fields.Integer(
        allow_none=True, metadata={"description": "本轮复查留存的抓拍照片"}
    )
    photos = fields.List(fields.Nested(AttachmentOut))


class NoticeEventOut(Schema):
    actor_id = fields.Integer(allow_none=True)
    from_status = fields.Function(lambda e: e.from_status.value if e.from_status else None)
    to_status = fields.String(attribute="to_status.value")
    reason = fields.String(allow_none=True)
    at = fields.DateTime()


class FollowUpOut(Schema):
    id = fields.Integer()
    kind = fields.String(attribute="kind.value")
    happened_at = fields.DateTime()
    contact = fields.String()
    outcome = fields.String()
    recorded_by_id = fields.Integer()


class NoticeOut(Schema):
    id = fields.Integer()
    number = fields.String(allow_none=True)
    centre_id = fields.Integer()
    agency_id = fields.Integer()
    status = fields.String(attribute="status.value")
    status_label = fields.Function(lambda n: STATUS_LABELS[n.status])
    requirements = fields.String()
    legal_basis = fields.String()
    deadline = fields.Date(allow_none=True)
    deadline_working_days = fields.Integer(allow_none=True)
    deadline_provisional = fields.Boolean()
    issued_at = fields.DateTime(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    responded_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    review_mode = fields.Function(
        lambda n: n.review_mode.value if n.review_mode else None,
        metadata={"description": "最近一次复查的方式（各轮见 responses）"},
    )
    review_snapshot_id = fields.Integer(
        allow_none=True, metadata={"description": "最近一次复查的抓拍照片"}
    )
    onsite_required = fields.Boolean(
        metadata={"description": "逾期上报后须现场复查（不能视频复查）"}
    )
    findings = fields.List(fields.Nested(FindingOut))


class NoticeDetailOut(NoticeOut):
    history = fields.List(fields.Nested(NoticeEventOut))
    responses = fields.List(fields.Nested(NoticeResponseOut))
    follow_ups = fields.List(fields.Nested(FollowUpOut))


class PersonOut(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()


class CentreInvitationOut(Schema):
    agency_id = fields.Integer()
    agency_name = fields.String()
    agency_kind = fields.String(metadata={"description": "market_regulation 或 education"})
    sent_at = fields.DateTime()
    sent_by = fields.Nested(PersonOut, allow_none=True)
    accepted_at = fields.DateTime(
        allow_none=True, metadata={"description": "机构接受倡议、开始安装的时间"}
    )
    letter = fields.String(metadata={"description": "倡议书正文"})


class CentreStatusChangeOut(Schema):
    at = fields.DateTime()
    from_status = fields.String(allow_none=True)
    from_label = fields.String(allow_none=True)
    to_status = fields.String()
    to_label = fields.String()
    actor = fields.Nested(PersonOut, allow_none=True)
    reason = fields.String(allow_none=True)


class CentreHistoryOut(Schema):
    centre_id = fields.Integer()
    status = fields.String()
    status_label = fields.String()
    invitation = fields.Nested(CentreInvitationOut, allow_none=True)
    history = fields.List(fields.Nested(CentreStatusChangeOut))


class WatchOut(Schema):
    camera_id = fields.Integer(attribute="camera.id")
    url = fields.String(metadata={"description": "签名的 HLS 播放地址（相对路径）"})
    expires_at = fields.DateTime()
    status = fields.String(attribute="camera.status.value")
    last_frame_at = fields.DateTime(
        attribute="camera.last_frame_at",
        allow_none=True,
        metadata={"description": "最后一次收到画面的时间（离线时显示给观看者）"},
    )


class SnapshotIn(StrictSchema):
    reason = fields.Enum(SnapshotReason, by_value=True, load_default=SnapshotReason.MANUAL)
    patrol_id = RowId(load_default=None, allow_none=True)


# --- the centre's inspection record (app/services/centres.py: record_of) ----------------------

ISO_TIME = {"format": "date-time"}


def _time(**kwargs) -> fields.String:  # type: ignore[no-untyped-def]
    """A timestamp the service has already written as ISO 8601."""
    return fields.String(metadata={**ISO_TIME, **kwargs.pop("metadata", {})}, **kwargs)


class RecordLastPatrolOut(Schema):
    ended_at = _time(allow_none=True)
    mode = fields.String()
    findings = fields.Integer(metadata={"description": "发现的问题数"})
    result = fields.String(metadata={"example": "发现 1 个问题"})


class RecordNoticeCountsOut(Schema):
    open = fields.Integer(metadata={"description": "未办结的整改通知数"})
    overdue = fields.Integer(metadata={"description": "逾期（含已上报）的整改通知数"})
    verified = fields.Integer(metadata={"description": "复查通过的整改通知数"})


class RecordPatrolOut(Schema):
    id = fields.Integer()
    started_at = _time()
    ended_at = _time(allow_none=True)
    mode = fields.String()
    findings = fields.Integer()


class RecordFindingOut(Schema):
    id = fields.Integer()
    category = fields.String()
    severity = fields.String()
    description = fields.String()
    area_id = fields.Integer(allow_none=True)
    recorded_at = _time()
    snapshot_ids = fields.List(fields.Integer())


class RecordEventOut(Schema):
    actor_id = fields.Integer(allow_none=True)
    actor = fields.String(metadata={"description": "操作人姓名（系统自动为“系统”）"})
    at = _time()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    reason = fields.String(allow_none=True)


class RecordResponseOut(Schema):
    round = fields.Integer()
    author = fields.String()
    text = fields.String()
    submitted_at = _time()
    photo_ids = fields.List(fields.Integer())
    reviewed_at = _time(allow_none=True)
    reviewer = fields.String(allow_none=True)
    accepted = fields.Boolean(allow_none=True)
    review_note = fields.String(allow_none=True)
    review_mode = fields.String(
        allow_none=True, metadata={"enum": [*(m.value for m in ReviewMode), None]}
    )
    review_snapshot_id = fields.Integer(allow_none=True)


class RecordFollowUpOut(Schema):
    kind = fields.String()
    happened_at = _time()
    contact = fields.String()
    outcome = fields.String()
    recorded_by = fields.String()


class RecordNoticeOut(Schema):
    id = fields.Integer()
    number = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()
    deadline = fields.String(allow_none=True, metadata={"format": "date"})
    issued_at = _time(allow_none=True)
    closed_at = _time(allow_none=True)
    onsite_required = fields.Boolean()
    findings = fields.List(fields.Nested(RecordFindingOut))
    history = fields.List(fields.Nested(RecordEventOut))
    responses = fields.List(fields.Nested(RecordResponseOut))
    follow_ups = fields.List(fields.Nested(RecordFollowUpOut))


class CentreRecordOut(Schema):
    """A centre's inspection record. Parents get the summary only; staff in scope also get
    `patrols` and `notice_list` (each notice with its findings, history, answers and
    follow-ups)."""

    centre_id = fields.Integer()
    centre_name = fields.String()
    status = fields.String()
    last_patrol = fields.Nested(RecordLastPatrolOut, allow_none=True)
    notices = fields.Nested(RecordNoticeCountsOut)
    patrols = fields.List(
        fields.Nested(RecordPatrolOut), metadata={"description": "最近 50 次巡查（家长不可见）"}
    )
    notice_list = fields.List(
        fields.Nested(RecordNoticeOut),
        metadata={"description": "最近 100 份整改通知及其全部经过（家长不可见）"},
    )
