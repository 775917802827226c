"""DingTalk custom robot (自定义机器人) with signing: `timestamp` (ms) and `sign` =
base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")) in the query; 20 messages a minute,
and a robot that exceeds it is banned for 10 minutes (130101 / 410100). The request body may
be at most 20,000 bytes (460101 "message too long, exceed 20000 bytes")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from bots.channels import register
from bots.channels.base import (
    Delivery,
    Message,
    Pace,
    Recipient,
    SendError,
    Throttled,
    fit_body,
    paces_from,
)
from bots.channels.robots import RobotChannel, robots_of

NAME = "dingtalk_robot"
BODY_MAX_BYTES = 20_000
THROTTLE_CODES = {130101, 410100}
BAN_S = 600
# token missing / not found / robot disabled / too long
PERMANENT_CODES = {300001, 300005, 400013, 460101}


def signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` parameter (before URL encoding, which requests does)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class DingTalkRobot(RobotChannel):
    name = NAME

    def send(self, to: Recipient, message: Message) -> Delivery:
        options = self.options(to.address)
        token = options.get("access_token")
        if not token:
            raise SendError(f"robot {to.address!r} has no access_token", permanent=True)
        params: dict[str, Any] = {"access_token": token}
        if options.get("secret"):
            now_ms = int(time.time() * 1000)
            params.update(timestamp=now_ms, sign=signature(options["secret"], now_ms))
        title = message.title
        body = fit_body(
            lambda text: {"msgtype": "markdown", "markdown": {"title": title, "text": text}},
            message.as_markdown,
            BODY_MAX_BYTES,
        )
        answer = self.post_json(f"{self.api_base}/robot/send", body, params=params)
        code = int(answer.get("errcode", -1))
        if code == 0:
            return Delivery("markdown")
        detail = f"{code} {answer.get('errmsg', '')}"
        if code in THROTTLE_CODES:
            raise Throttled(detail, code=code, retry_after=BAN_S)
        raise SendError(detail, code=code, permanent=code in PERMANENT_CODES)


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> DingTalkRobot | None:
    destinations = robots_of(settings, NAME)
    if not destinations:
        return None
    channel = DingTalkRobot(
        settings["DINGTALK_API_BASE"], destinations, settings["CHAT_HTTP_TIMEOUT_S"]
    )
    channel.paces = paces_from(settings, NAME, (Pace(20, 60.0),))
    return channel
