"""The JSON API under /api/v1: one blueprint per audience, OpenAPI generated from the code."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask
from werkzeug.routing import IntegerConverter

from app.api.forms import allow_photo_forms
from app.api.schemas import MAX_ID, ErrorSchema
from app.errors import NotFound

ERROR_RESPONSES = {
    "BadRequest": "请求格式错误",
    "Unauthenticated": "未登录或登录已失效",
    "Forbidden": "没有权限",
    "NotFound": "找不到对象",
    "Conflict": "当前状态不允许此操作",
    "Unprocessable": "内容未通过校验",
    "TooManyRequests": "操作过于频繁",
    "UpstreamError": "外部服务不可用",
}


def row_id_schema(converter: IntegerConverter) -> dict[str, Any]:
    """How `<int:…>` path parameters are documented: a row id (or a year)."""
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def refuse_impossible_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Integers in our URLs are row ids (and a year). One the database's INTEGER columns cannot
    hold names nothing: 404 before it reaches the database, which fails on it (SQLite beyond
    64 bits, PostgreSQL beyond int4). Done here rather than in the URL converter, so that the
    route still matches and the answer is a 404 whatever the method."""
    for value in (values or {}).values():
        if isinstance(value, int) and not 1 <= value <= MAX_ID:
            raise NotFound()


class CommonErrorResponses(BasePlugin):
    """Document the errors every operation of a kind can answer, wherever it is declared:
    400 for a request body that is not JSON (webargs refuses it before validation), and 404
    for a path whose ids name nothing (an unknown row, or a number the route refuses)."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content and "400" not in map(str, responses):
                responses["400"] = "BadRequest"
            if path and "{" in path and "404" not in map(str, responses):
                responses["404"] = "NotFound"


def init_app(app: Flask) -> None:
    from app.api import (
        admin,
        auth,
        centres,
        concerns,
        dashboard,
        health,
        hls,
        inspector,
        invites,
        notices,
        onboarding,
        operator,
        parent,
    )
    from app.extensions import api

    app.config.update(
        API_TITLE="Bright Kitchen API（互联网+明厨亮灶）",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    # The error responses flask-smorest documents use this schema: ours, not its own
    # {code, status, message, errors}, which no answer of this app has.
    api.ERROR_SCHEMA = ErrorSchema
    api.init_app(app, spec_kwargs={"extra_plugins": [CommonErrorResponses()]})
    api.register_converter(IntegerConverter, row_id_schema)
    app.url_value_preprocessor(refuse_impossible_ids)
    app.before_request(allow_photo_forms)
    if "bearerAuth" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )
        for name, description in ERROR_RESPONSES.items():
            api.spec.components.response(
                name,
                {
                    "description": description,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            )
    api.register_blueprint(auth.blp, url_prefix="/api/v1/auth")
    api.register_blueprint(centres.blp, url_prefix="/api/v1")
    api.register_blueprint(operator.blp, url_prefix="/api/v1/operator")
    api.register_blueprint(inspector.blp, url_prefix="/api/v1/inspector")
    api.register_blueprint(notices.blp, url_prefix="/api/v1")
    api.register_blueprint(admin.blp, url_prefix="/api/v1/admin")
    api.register_blueprint(onboarding.blp, url_prefix="/api/v1")
    api.register_blueprint(dashboard.blp, url_prefix="/api/v1")
    api.register_blueprint(parent.blp, url_prefix="/api/v1/parent")
    api.register_blueprint(concerns.blp, url_prefix="/api/v1")
    api.register_blueprint(invites.blp, url_prefix="/api/v1")
    app.register_blueprint(health.bp)
    app.register_blueprint(hls.bp)
