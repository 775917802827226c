"""Request and response shapes of the JSON API (they also generate the OpenAPI document)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "forbidden"})
    message = fields.String(required=True, metadata={"example": "没有权限执行此操作"})


class LoginIn(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), load_only=True
    )


class RefreshIn(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=256))


class WxaLoginIn(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))


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


class MealWindowSchema(StrictSchema):
    label = fields.String(required=True, validate=validate.Length(min=1, max=32))
    weekday = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=6)
    )
    starts_at = fields.Time(required=True, format="%H:%M")
    ends_at = fields.Time(required=True, format="%H:%M")


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
