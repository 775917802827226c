"""The JSON API under /api/v1: one blueprint per audience, OpenAPI generated from the code."""

from __future__ import annotations

from flask import Flask

from app.api.schemas import ErrorSchema

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
    api.init_app(app)
    if "bearerAuth" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )
        if "Error" not in api.spec.components.schemas:
            api.spec.components.schema("Error", schema=ErrorSchema)
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
