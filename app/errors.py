"""Domain errors and their one mapping to HTTP.

Services raise these; the API never builds error responses itself. Every error body is
`{"error": code, "message": text}` (plus optional details), in Simplified Chinese for users.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    status = 400
    code = "bad_request"
    default_message = "请求无效"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details


class BadInput(DomainError):
    status = 400
    code = "bad_request"
    default_message = "请求内容无效"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    default_message = "请先登录"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    default_message = "没有权限执行此操作"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = "找不到该对象"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = "当前状态不允许此操作"


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"
    default_message = "内容未通过校验"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = "操作过于频繁，请稍后再试"


class UpstreamError(DomainError):
    status = 502
    code = "upstream_error"
    default_message = "外部服务暂时不可用，请稍后再试"


# Messages for HTTP errors raised by Flask/Werkzeug itself (routing, body size, JSON parsing).
HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式错误：请提交合法的 JSON"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "找不到该地址或对象"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "当前状态不允许此操作"),
    413: ("payload_too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "请以 JSON 格式提交"),
    422: ("unprocessable", "内容未通过校验"),
    429: ("rate_limited", "操作过于频繁，请稍后再试"),
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    body.update({k: v for k, v in details.items() if v is not None})
    return body


def _wants_json() -> bool:
    if request.path.startswith(("/api/", "/healthz", "/hls/", "/wechat/", "/wecom/")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def _photo_form_too_large() -> str:
    """What a parent or operator is told when their photos together are too large."""
    mib = 1024 * 1024
    per_photo = current_app.config["UPLOAD_MAX_BYTES"] // mib
    whole = (request.max_content_length or 0) // mib
    return f"照片总大小超过上限：每张照片不超过 {per_photo} MB，一次提交共不超过 {whole} MB"


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError):
        return jsonify(error_body(exc.code, exc.message, **exc.details)), exc.status

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        status = exc.code or 500
        code, message = HTTP_MESSAGES.get(status, ("http_error", exc.name))
        details: dict[str, Any] = {}
        # flask-smorest/webargs attach field-level validation messages here.
        data = getattr(exc, "data", None)
        messages = data.get("messages") if isinstance(data, dict) else None
        if isinstance(messages, dict):
            # {"json": {"field": ["msg"]}} → {"field": ["msg"]}
            flat: dict[str, Any] = {}
            for location_messages in messages.values():
                if isinstance(location_messages, dict):
                    flat.update(location_messages)
                else:
                    flat["_body"] = location_messages
            details["fields"] = flat
        if not _wants_json():
            return exc
        if status == 413 and request.mimetype == "multipart/form-data":
            message = _photo_form_too_large()
        return jsonify(error_body(code, message, **details)), status

    @app.errorhandler(sqlalchemy.exc.TimeoutError)
    def handle_pool_timeout(exc: sqlalchemy.exc.TimeoutError):
        # Every database connection of this process stayed busy for DB_POOL_TIMEOUT_S.
        app.logger.warning("no database connection free for %s %s", request.method, request.path)
        response = jsonify(error_body("busy", "服务繁忙，请稍后重试"))
        response.headers["Retry-After"] = "5"
        return response, 503

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error_body("internal_error", "服务器内部错误，请稍后再试")), 500
