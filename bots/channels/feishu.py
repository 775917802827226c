"""Feishu custom bot (自定义机器人): POST to /open-apis/bot/v2/hook/<token> with `timestamp`
(seconds) and `sign` = base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b"")) in the body;
100 messages a minute and 5 a second (11232 past that); 19021 for a bad signature; the request
body may be at most 20 KB (taken as 20,000 bytes, the stricter reading)."""

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

NAME = "feishu_robot"
BODY_MAX_BYTES = 20_000
THROTTLED = 11232
# bad request / bad hook token / keyword mismatch / message too large
PERMANENT_CODES = {9499, 19001, 19024, 19036}


def signature(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuBot(RobotChannel):
    name = NAME

    def send(self, to: Recipient, message: Message) -> Delivery:
        options = self.options(to.address)
        token = options.get("token")
        if not token:
            raise SendError(f"robot {to.address!r} has no token", permanent=True)
        signed: dict[str, str] = {}
        if options.get("secret"):
            now = int(time.time())
            signed = {"timestamp": str(now), "sign": signature(options["secret"], now)}
        body = fit_body(
            lambda text: {"msg_type": "text", "content": {"text": text}, **signed},
            message.as_text,
            BODY_MAX_BYTES,
        )
        answer = self.post_json(f"{self.api_base}/open-apis/bot/v2/hook/{token}", body)
        # Newer answers carry `code`; older ones `StatusCode`.
        code = int(answer.get("code", answer.get("StatusCode", -1)))
        if code == 0:
            return Delivery("text")
        detail = f"{code} {answer.get('msg', answer.get('StatusMessage', ''))}"
        if code == THROTTLED:
            raise Throttled(detail, code=code, retry_after=10)
        raise SendError(detail, code=code, permanent=code in PERMANENT_CODES)


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> FeishuBot | None:
    destinations = robots_of(settings, NAME)
    if not destinations:
        return None
    channel = FeishuBot(settings["FEISHU_API_BASE"], destinations, settings["CHAT_HTTP_TIMEOUT_S"])
    channel.paces = paces_from(settings, NAME, (Pace(5, 1.0), Pace(100, 60.0)))
    return channel
