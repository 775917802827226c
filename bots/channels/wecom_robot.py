"""WeCom group robot (群机器人): the key is in the webhook URL; 20 messages a minute per robot
(45009 past that); markdown content at most 4096 bytes (40058 past that)."""

from __future__ import annotations

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
    paces_from,
)
from bots.channels.robots import RobotChannel, robots_of

NAME = "wecom_robot"
MARKDOWN_MAX_BYTES = 4096
THROTTLED = 45009
PERMANENT_CODES = {40058, 93000, 93004}  # too long / invalid webhook / robot removed


class WeComRobot(RobotChannel):
    name = NAME

    def send(self, to: Recipient, message: Message) -> Delivery:
        key = self.options(to.address).get("key")
        if not key:
            raise SendError(f"robot {to.address!r} has no key", permanent=True)
        content = message.as_markdown(MARKDOWN_MAX_BYTES)
        answer = self.post_json(
            f"{self.api_base}/cgi-bin/webhook/send",
            {"msgtype": "markdown", "markdown": {"content": content}},
            params={"key": key},
        )
        code = int(answer.get("errcode", -1))
        if code == 0:
            return Delivery("markdown")
        text = f"{code} {answer.get('errmsg', '')}"
        if code == THROTTLED:
            raise Throttled(text, code=code, retry_after=60)
        raise SendError(text, code=code, permanent=code in PERMANENT_CODES)


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> WeComRobot | None:
    destinations = robots_of(settings, NAME)
    if not destinations:
        return None
    channel = WeComRobot(settings["WECOM_API_BASE"], destinations, settings["CHAT_HTTP_TIMEOUT_S"])
    channel.paces = paces_from(settings, NAME, (Pace(20, 60.0),))
    return channel
