"""Mini-program subscription messages (小程序订阅消息): how a parent who uses only the
mini-program (a mini-program openid, no official-account openid) hears what became of a concern.

`POST /cgi-bin/message/subscribe/send` with the mini-program's own access token (wechatpy's
`WeChatWxa.send_subscribe_message`, on a client of WXA_APP_ID / WXA_APP_SECRET). WeChat's rules:
- the template (WXA_SUBSCRIBE_TEMPLATE_ID) is one the mini-program picked in its console
  (40037 otherwise); `data` fills each of its keys, each by the rule of its type — thing: at most
  20 characters; phrase: at most 5 Chinese characters; time: 15:01 or 2019年10月1日 15:01
  (47003 otherwise);
- the user must have granted it in the mini-program (`wx.requestSubscribeMessage`): a one-time
  grant lets exactly one message through, and without one WeChat answers 43101 ("user refuse to
  accept the msg"). Retrying cannot help until they grant again, so 43101 fails the row at once,
  with the reason.

The message's fields (bots/render.py, for concerns: 事项, 状态, 时间, 说明) fill the template's keys
in order (WXA_SUBSCRIBE_KEYS, e.g. thing1,phrase2,time3,thing4), each cut to its type's rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from app.wechat_api import token_storage, wechat_client
from bots.channels import register
from bots.channels.base import ChatChannel, Delivery, Message, Recipient, SendError
from bots.channels.wechat_mp import map_error

NAME = "wxa_subscribe"
THING_MAX_CHARS = 20
PHRASE_MAX_CHARS = 5
# 43101 no grant left (or refused); 40003 not a user of this mini-program; 40037 unknown
# template; 47003 data not by the template's rules; 41030 no such page.
PERMANENT_CODES = {43101, 40003, 40037, 47003, 41030}
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_NOT_HAN = re.compile(r"[^\u4e00-\u9fff]")


def fit(kind: str, value: str) -> str:
    """A value by the rule of its key's type (the part of the key before its number)."""
    value = _CONTROL.sub(" ", value).strip()
    if kind == "thing":
        return value if len(value) <= THING_MAX_CHARS else value[: THING_MAX_CHARS - 1] + "…"
    if kind == "phrase":
        return _NOT_HAN.sub("", value)[:PHRASE_MAX_CHARS]
    if kind in ("time", "date") and not value:
        now = datetime.now(LOCAL_TZ)
        return f"{now.year}年{now.month}月{now.day}日 {now:%H:%M}"
    return value


class WeChatSubscription(ChatChannel):
    name = NAME

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        template_id: str,
        keys: tuple[str, ...],
        page: str | None,
        api_base: str,
        timeout: float,
        token_store: SessionStorage | None = None,
    ) -> None:
        self.template_id = template_id
        self.keys = keys
        self.page = page
        self.client = wechat_client(appid, secret, api_base, timeout, session=token_store)

    def close(self) -> None:
        self.client._http.close()

    def data(self, message: Message) -> dict[str, dict[str, str]]:
        values = [value for _, value in message.fields]
        data = {}
        for index, key in enumerate(self.keys):
            kind = key.rstrip("0123456789")
            value = values[index] if index < len(values) else ""
            if not value and kind == "thing":
                value = "详情请在小程序中查看"
            data[key] = {"value": fit(kind, value)}
        return data

    def send(self, to: Recipient, message: Message) -> Delivery:
        page = None
        if self.page and message.url:
            page = self.page.format(url=quote(message.url, safe=""))
        try:
            answer = self.client.wxa.send_subscribe_message(
                to.address, self.template_id, self.data(message), page=page
            )
        except WeChatClientException as exc:
            error = map_error(exc)
            if exc.errcode in PERMANENT_CODES:
                error.permanent = True
            raise error from None
        except requests.RequestException as exc:
            raise SendError(type(exc).__name__) from None
        return Delivery("subscribe", {"msgid": answer.get("msgid")})


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> WeChatSubscription | None:
    if not all(
        settings.get(k) for k in ("WXA_APP_ID", "WXA_APP_SECRET", "WXA_SUBSCRIBE_TEMPLATE_ID")
    ):
        return None
    keys = tuple(k.strip() for k in str(settings["WXA_SUBSCRIBE_KEYS"]).split(",") if k.strip())
    return WeChatSubscription(
        appid=settings["WXA_APP_ID"],
        secret=settings["WXA_APP_SECRET"],
        template_id=settings["WXA_SUBSCRIBE_TEMPLATE_ID"],
        keys=keys,
        page=settings.get("WXA_SUBSCRIBE_PAGE"),
        api_base=settings["WECHAT_API_BASE"],
        timeout=settings["CHAT_HTTP_TIMEOUT_S"],
        token_store=token_storage(settings.get("REDIS_URL")),
    )
