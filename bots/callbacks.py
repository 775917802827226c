"""`/wechat/callback` and `/wecom/callback`: one plain blueprint per channel (not under /api/v1;
the platforms call them).

Per POST: refuse at the edge (size, XML safety, signature, timestamp window) with nothing
stored. Every message is recorded first — its unique key makes the platform's retries one
record — then routed (a command that changes something is one short service transaction) and
its reply stored with it, so a retry or replay gets the reply given the first time and has no
second effect. Slow work (photo download) is queued once the message is recorded, so the
platform hears back well within 5 s.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from app.errors import error_body
from app.models import Channel
from app.services import chat
from bots import router
from bots.channels import ChannelNotConfigured
from bots.channels.callback import CallbackRefused

log = logging.getLogger(__name__)

wechat_bp = Blueprint("wechat_callback", __name__)
wecom_bp = Blueprint("wecom_callback", __name__)

REFUSALS = {
    400: ("bad_callback", "回调内容无效"),
    403: ("bad_signature", "签名校验失败"),
    404: ("not_configured", "该渠道未配置"),
    413: ("payload_too_large", "回调内容过大"),
}


def _refuse(status: int, reason: str) -> tuple[Response, int]:
    code, message = REFUSALS.get(status, ("bad_callback", "回调内容无效"))
    return jsonify(error_body(code, message, reason=reason)), status


def _adapter(channel: Channel):  # type: ignore[no-untyped-def]
    return current_app.extensions["bk_chat"].get(channel.value)


def _body() -> bytes:
    """At most one byte over the cap (enough to know it is too big)."""
    cap = current_app.config["CHAT_CALLBACK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > cap:
        raise CallbackRefused(413, "too_large")
    return request.stream.read(cap + 1)


def _verify(channel: Channel):  # type: ignore[no-untyped-def]
    try:
        echo = _adapter(channel).verify_echo(request.args)
    except ChannelNotConfigured:
        return _refuse(404, "not_configured")
    except CallbackRefused as exc:
        log.warning("%s echo refused: %s", channel.value, exc.reason)
        return _refuse(exc.status, exc.reason)
    return Response(echo, mimetype="text/plain")


def _receive(channel: Channel):  # type: ignore[no-untyped-def]
    try:
        adapter = _adapter(channel)
        inbound = adapter.parse(request.args, _body())
    except ChannelNotConfigured:
        return _refuse(404, "not_configured")
    except CallbackRefused as exc:
        log.warning("%s callback refused: %s", channel.value, exc.reason)
        return _refuse(exc.status, exc.reason)
    recorded = chat.record_inbound(
        channel, inbound.dedupe_key, inbound.sender, inbound.msg_type, inbound.fields
    )
    if not recorded.created:
        # The platform's retry, or a replay: the same answer, no second effect.
        return _answer(adapter.reply(inbound, recorded.reply, request.args))
    try:
        reply = router.handle(inbound)
    except Exception:
        log.exception("%s message %s could not be handled", channel.value, recorded.id)
        reply = router.Reply("系统繁忙，请稍后再试。")
        chat.finish_inbound(recorded.id, reply.text, error="unhandled error (see log)")
        return _answer(adapter.reply(inbound, reply.text, request.args))
    chat.finish_inbound(recorded.id, reply.text)
    if reply.photo_followup:
        _queue_photo(recorded.id)
    return _answer(adapter.reply(inbound, reply.text, request.args))


def _queue_photo(inbound_id: int) -> None:
    try:
        current_app.extensions["bk_tasks"]["chat_photo"](inbound_id)
    except Exception:  # the queue is down: the periodic sweep fetches it (within minutes)
        log.warning("could not queue photo %s", inbound_id, exc_info=True)


def _answer(body: str) -> Response:
    mimetype = "text/plain" if body == "success" else "application/xml"
    return Response(body, mimetype=mimetype)


@wechat_bp.get("/wechat/callback")
def wechat_verify():
    return _verify(Channel.WECHAT_MP)


@wechat_bp.post("/wechat/callback")
def wechat_receive():
    return _receive(Channel.WECHAT_MP)


@wecom_bp.get("/wecom/callback")
def wecom_verify():
    return _verify(Channel.WECOM_APP)


@wecom_bp.post("/wecom/callback")
def wecom_receive():
    return _receive(Channel.WECOM_APP)
