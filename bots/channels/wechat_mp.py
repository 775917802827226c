"""WeChat official account (公众号): passive replies to callbacks, customer-service messages
inside the 48-hour window after the person's last message, template messages outside it.

Rules (DESIGN.md "Chat channels"): customer-service messages only within 48 h of the user's last
message (and at most 5 per window — WeChat answers 45047 past that, 45015 outside the window);
otherwise a template message. Temporary media expire, so they are downloaded at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import requests
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.replies import TextReply
from wechatpy.session import SessionStorage

from app.wechat_api import token_storage, wechat_client
from bots.channels import register
from bots.channels.base import (
    ChatChannel,
    Delivery,
    Message,
    Recipient,
    SendError,
    Throttled,
)
from bots.channels.callback import (
    CallbackRefused,
    Inbound,
    check_signature,
    inbound_from,
    safe_xml,
)

NAME = "wechat_mp"
SERVICE_WINDOW = timedelta(hours=48)
# Leave a margin: a message queued at 47:59 may go out after the window closed.
SERVICE_WINDOW_MARGIN = timedelta(minutes=10)
CUSTOM_TEXT_MAX_BYTES = 2048
# The configured template (WECHAT_TEMPLATE_ID) has first, keyword1…keyword3 and remark.
TEMPLATE_KEYWORDS = 3
OUTSIDE_WINDOW = 45015  # response out of time limit
OVER_WINDOW_QUOTA = 45047  # out of response count limit
API_FREQ_LIMIT = 45009  # reach max api daily quota limit
CHINA_TZ = ZoneInfo("Asia/Shanghai")
BUSY = -1
# The user unsubscribed, or the openid is not of this account: retrying cannot help.
PERMANENT_CODES = {40003, 43004, 43019}


def until_quota_resets(now: datetime | None = None) -> float:
    """Seconds until WeChat's daily API quotas reset (midnight, China time), at least a minute.
    45009 means the account's quota for the day is used up (an administrator can clear it in
    the console, hence no longer than a day's wait and the minimum)."""
    local = (now or datetime.now(UTC)).astimezone(CHINA_TZ)
    midnight = datetime.combine(local.date() + timedelta(days=1), dt_time(0), CHINA_TZ)
    return max((midnight - local).total_seconds(), 60.0)


def map_error(exc: WeChatClientException) -> SendError:
    code = exc.errcode
    if code is None:
        status = getattr(exc.response, "status_code", None)
        return SendError(f"HTTP {status}", code=status)
    if code == API_FREQ_LIMIT:
        return Throttled(
            f"{code} daily API quota used up", code=code, retry_after=until_quota_resets()
        )
    return SendError(f"{code} {exc.errmsg}", code=code, permanent=code in PERMANENT_CODES)


class WeChatOfficialAccount(ChatChannel):
    name = NAME

    def __init__(
        self,
        *,
        appid: str,
        secret: str | None,
        token: str,
        aes_key: str | None,
        api_base: str,
        template_id: str | None,
        timeout: float,
        max_body_bytes: int,
        window_s: int,
        token_store: SessionStorage | None = None,
    ) -> None:
        self.appid = appid
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        self.template_id = template_id
        self.max_body_bytes = max_body_bytes
        self.window_s = window_s
        self.client = (
            wechat_client(appid, secret, api_base, timeout, session=token_store) if secret else None
        )

    def close(self) -> None:
        if self.client is not None:
            self.client._http.close()

    # -- inbound ---------------------------------------------------------------------------

    def verify_echo(self, args: Mapping[str, str]) -> str:
        """GET verification: the echo string back if the signature is WeChat's."""
        check_signature(
            self.token,
            args.get("signature"),
            args.get("timestamp"),
            args.get("nonce"),
            window_s=self.window_s,
        )
        return args.get("echostr", "")

    def parse(self, args: Mapping[str, str], body: bytes) -> Inbound:
        """A POSTed message, plain or safe mode, checked and decrypted; refused otherwise."""
        if args.get("encrypt_type", "raw") == "aes":
            if self.crypto is None:
                raise CallbackRefused(400, "safe_mode_not_configured")
            envelope = safe_xml(body, self.max_body_bytes)
            encrypted = envelope.get("Encrypt")
            if not encrypted:
                raise CallbackRefused(400, "no_encrypt")
            check_signature(
                self.token,
                args.get("msg_signature"),
                args.get("timestamp"),
                args.get("nonce"),
                encrypted,
                window_s=self.window_s,
            )
            try:
                body = PrpCrypto(self.crypto.key).decrypt(encrypted, self.appid)
            except Exception:  # wrong key, wrong appid, bad padding: not a message of ours
                raise CallbackRefused(400, "undecryptable") from None
        else:
            # The signature covers no body in plain mode: check it before parsing anything.
            check_signature(
                self.token,
                args.get("signature"),
                args.get("timestamp"),
                args.get("nonce"),
                window_s=self.window_s,
            )
        fields = safe_xml(body if isinstance(body, bytes) else body.encode(), self.max_body_bytes)
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise CallbackRefused(400, "not_a_message")
        return inbound_from(NAME, parse_message(body))

    def reply(self, inbound: Inbound, text: str | None, args: Mapping[str, str]) -> str:
        """The passive reply body: `success` (nothing to say) or a text reply, encrypted in
        safe mode."""
        if not text:
            return "success"
        xml = TextReply(source=inbound.account, target=inbound.sender, content=text).render()
        if args.get("encrypt_type") == "aes" and self.crypto is not None:
            return self.crypto.encrypt_message(xml, args.get("nonce") or "", str(int(time.time())))
        return xml

    def download_media(self, media_id: str) -> bytes:
        if self.client is None:
            raise SendError("official account API not configured", permanent=True)
        try:
            response = self.client.media.download(media_id)
        except WeChatClientException as exc:
            raise map_error(exc) from None
        except requests.RequestException as exc:
            raise SendError(type(exc).__name__) from None
        if isinstance(response, dict):  # JSON instead of the file
            raise SendError(f"media {media_id}: {response.get('errcode')}")
        return response.content

    # -- outbound --------------------------------------------------------------------------

    def send(self, to: Recipient, message: Message) -> Delivery:
        if self.client is None:
            raise SendError("official account API not configured (WECHAT_APP_SECRET)")
        if in_service_window(to.last_inbound_at):
            try:
                text = message.as_text(CUSTOM_TEXT_MAX_BYTES)
                self.client.message.send_text(to.address, text)
                return Delivery("custom")
            except WeChatClientException as exc:
                if exc.errcode not in (OUTSIDE_WINDOW, OVER_WINDOW_QUOTA):
                    raise map_error(exc) from None
                # The window closed or its quota is used up: a template message instead.
            except requests.RequestException as exc:
                raise SendError(type(exc).__name__) from None
        return self._send_template(to, message)

    def _send_template(self, to: Recipient, message: Message) -> Delivery:
        if not self.template_id:
            raise SendError(
                "outside the 48-hour window and no WECHAT_TEMPLATE_ID configured", permanent=True
            )
        data: dict[str, dict[str, str]] = {"first": {"value": message.title}}
        for index, (_, value) in enumerate(message.fields[:TEMPLATE_KEYWORDS], start=1):
            data[f"keyword{index}"] = {"value": value}
        data["remark"] = {"value": "\n".join(message.lines[-1:]) if message.lines else ""}
        try:
            answer = self.client.message.send_template(  # type: ignore[union-attr]
                to.address, self.template_id, data, url=message.url
            )
        except WeChatClientException as exc:
            raise map_error(exc) from None
        except requests.RequestException as exc:
            raise SendError(type(exc).__name__) from None
        return Delivery("template", {"msgid": answer.get("msgid")})


def in_service_window(last_inbound_at: datetime | None, now: datetime | None = None) -> bool:
    if last_inbound_at is None:
        return False
    now = now or datetime.now(UTC)
    return now - last_inbound_at < SERVICE_WINDOW - SERVICE_WINDOW_MARGIN


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> WeChatOfficialAccount | None:
    if not settings.get("WECHAT_APP_ID") or not settings.get("WECHAT_TOKEN"):
        return None
    return WeChatOfficialAccount(
        appid=settings["WECHAT_APP_ID"],
        secret=settings.get("WECHAT_APP_SECRET"),
        token=settings["WECHAT_TOKEN"],
        aes_key=settings.get("WECHAT_AES_KEY"),
        api_base=settings["WECHAT_API_BASE"],
        template_id=settings.get("WECHAT_TEMPLATE_ID"),
        timeout=settings["CHAT_HTTP_TIMEOUT_S"],
        max_body_bytes=settings["CHAT_CALLBACK_MAX_BYTES"],
        window_s=settings["CHAT_SIGNATURE_WINDOW_S"],
        token_store=token_storage(settings.get("REDIS_URL")),
    )
