"""WeCom (企业微信) self-built app: encrypted callbacks from operators and inspectors, and app
messages to a member.

WeCom drops app messages beyond 30 a minute to one member without an error, so the dispatcher
paces per member (`paces`) rather than waiting for a code that never comes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException
from wechatpy.replies import TextReply
from wechatpy.session import SessionStorage
from wechatpy.work import WeChatClient
from wechatpy.work import parse_message as parse_work_message
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto

from app.wechat_api import point_at, token_storage
from bots.channels import register
from bots.channels.base import (
    ChatChannel,
    Delivery,
    Message,
    Pace,
    Recipient,
    SendError,
    Throttled,
    paces_from,
)
from bots.channels.callback import CallbackRefused, Inbound, check_signature, inbound_from, safe_xml

NAME = "wecom_app"
WECOM_ORIGIN = "https://qyapi.weixin.qq.com"
TEXT_MAX_BYTES = 2048
THROTTLE_CODES = {45009, 45033, 45035}  # frequency / concurrency limits
PERMANENT_CODES = {60111, 81013, 301002}  # no such member / not visible to the app


class WeComApp(ChatChannel):
    name = NAME

    def __init__(
        self,
        *,
        corp_id: str,
        agent_id: int | None,
        secret: str | None,
        token: str,
        aes_key: str,
        api_base: str,
        timeout: float,
        max_body_bytes: int,
        window_s: int,
        paces: tuple[Pace, ...],
        token_store: SessionStorage | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.max_body_bytes = max_body_bytes
        self.window_s = window_s
        self.paces = paces
        self.client: WeChatClient | None = None
        if secret:
            self.client = point_at(
                WeChatClient(corp_id, secret, timeout=timeout, session=token_store),
                api_base,
                WECOM_ORIGIN,
            )

    def close(self) -> None:
        if self.client is not None:
            self.client._http.close()

    # -- inbound ---------------------------------------------------------------------------

    def _decrypt(self, encrypted: str) -> bytes:
        try:
            plain = PrpCrypto(self.crypto.key).decrypt(encrypted, self.corp_id)
        except Exception:  # wrong key or another corp's message
            raise CallbackRefused(400, "undecryptable") from None
        return plain if isinstance(plain, bytes) else plain.encode()

    def verify_echo(self, args: Mapping[str, str]) -> str:
        echo = args.get("echostr") or ""
        check_signature(
            self.token,
            args.get("msg_signature"),
            args.get("timestamp"),
            args.get("nonce"),
            echo,
            window_s=self.window_s,
        )
        return self._decrypt(echo).decode()

    def parse(self, args: Mapping[str, str], body: bytes) -> Inbound:
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
        plain = self._decrypt(encrypted)
        fields = safe_xml(plain, self.max_body_bytes)
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise CallbackRefused(400, "not_a_message")
        return inbound_from(NAME, parse_work_message(plain))

    def reply(self, inbound: Inbound, text: str | None, args: Mapping[str, str]) -> str:
        if not text:
            return "success"
        xml = TextReply(source=inbound.account, target=inbound.sender, content=text).render()
        return self.crypto.encrypt_message(xml, args.get("nonce") or "", str(int(time.time())))

    def download_media(self, media_id: str) -> bytes:
        if self.client is None:
            raise SendError("WeCom API not configured", permanent=True)
        try:
            # Through the client's session (wechatpy's own download bypasses it).
            response = self.client.get("media/get", params={"media_id": media_id})
        except WeChatClientException as exc:
            raise SendError(f"{exc.errcode} {exc.errmsg}", code=exc.errcode) from None
        except requests.RequestException as exc:
            raise SendError(type(exc).__name__) from None
        if isinstance(response, dict):
            raise SendError(f"media {media_id}: {response.get('errcode')}")
        return response.content

    # -- outbound --------------------------------------------------------------------------

    def send(self, to: Recipient, message: Message) -> Delivery:
        if self.client is None or self.agent_id is None:
            raise SendError("WeCom app not configured (WECOM_SECRET, WECOM_AGENT_ID)")
        text = message.as_text(TEXT_MAX_BYTES)
        try:
            answer = self.client.message.send_text(self.agent_id, to.address, text)
        except WeChatClientException as exc:
            code = exc.errcode
            if code in THROTTLE_CODES:
                raise Throttled(f"{code} {exc.errmsg}", code=code, retry_after=60) from None
            if code is None:
                status = getattr(exc.response, "status_code", None)
                raise SendError(f"HTTP {status}", code=status) from None
            raise SendError(
                f"{code} {exc.errmsg}", code=code, permanent=code in PERMANENT_CODES
            ) from None
        except requests.RequestException as exc:
            raise SendError(type(exc).__name__) from None
        if to.address in str(answer.get("invaliduser") or "").split("|"):
            raise SendError("member not visible to the app (invaliduser)", permanent=True)
        return Delivery("text", {"msgid": answer.get("msgid")})


@register(NAME)
def from_settings(settings: Mapping[str, Any]) -> WeComApp | None:
    if not all(settings.get(k) for k in ("WECOM_CORP_ID", "WECOM_TOKEN", "WECOM_AES_KEY")):
        return None
    return WeComApp(
        corp_id=settings["WECOM_CORP_ID"],
        agent_id=settings.get("WECOM_AGENT_ID"),
        secret=settings.get("WECOM_SECRET"),
        token=settings["WECOM_TOKEN"],
        aes_key=settings["WECOM_AES_KEY"],
        api_base=settings["WECOM_API_BASE"],
        timeout=settings["CHAT_HTTP_TIMEOUT_S"],
        max_body_bytes=settings["CHAT_CALLBACK_MAX_BYTES"],
        window_s=settings["CHAT_SIGNATURE_WINDOW_S"],
        paces=paces_from(settings, NAME, (Pace(30, 60.0),)),
        token_store=token_storage(settings.get("REDIS_URL")),
    )
