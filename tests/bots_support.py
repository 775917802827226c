"""Shared set-up for the chat tests: every platform stub running, an app configured against
them, a district whose agency has three group robots, and callbacks built exactly as WeChat and
WeCom build them (sorted SHA-1 signatures; AES safe mode through wechatpy's crypto)."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring
from PIL import Image
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner
from wechatpy.work.crypto import WeChatCrypto as WeComCrypto

from app.extensions import db
from tests import factories as f
from tests.stubs.robots import DingTalkStub, FeishuStub
from tests.stubs.wechat import DEFAULT_APPID, DEFAULT_SECRET, WeChatStub
from tests.stubs.wecom import WeComStub

MP_APPID = "wx-official-account"
MP_SECRET = "mp-test-secret"
MP_ACCOUNT = "gh_meilan_kitchen"  # the account's own id (ToUserName)
MP_TOKEN = "bk-wechat-token"
MP_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aQ"
WECOM_TOKEN = "bk-wecom-token"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TEMPLATE_ID = "tpl-notice"
# The mini-program (the test config's WXA_APP_ID / WXA_APP_SECRET) and its subscription template.
WXA_APPID, WXA_SECRET = DEFAULT_APPID, DEFAULT_SECRET
SUBSCRIBE_TEMPLATE_ID = "tpl-concern-progress"
SUBSCRIBE_KEYS = ("thing1", "phrase2", "time3", "thing4")
_msg_ids = itertools.count(int(time.time()) * 1000)


def png(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def next_msg_id() -> int:
    return next(_msg_ids)


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def text_xml(
    sender: str,
    content: str,
    *,
    msg_id: int | None = None,
    to: str = MP_ACCOUNT,
    agent_id: int | None = None,
    created: int | None = None,
) -> str:
    agent = f"<AgentID>{agent_id}</AgentID>" if agent_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id or next_msg_id()}</MsgId>{agent}</xml>"
    )


def image_xml(
    sender: str,
    media_id: str,
    *,
    msg_id: int | None = None,
    to: str = MP_ACCOUNT,
    agent_id: int | None = None,
) -> str:
    agent = f"<AgentID>{agent_id}</AgentID>" if agent_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[http://mmbiz.qpic.cn/{media_id}]]></PicUrl>"
        f"<MediaId><![CDATA[{media_id}]]></MediaId>"
        f"<MsgId>{msg_id or next_msg_id()}</MsgId>{agent}</xml>"
    )


def event_xml(
    sender: str, event: str, key: str = "", *, created: int | None = None, to: str = MP_ACCOUNT
) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


@dataclass
class Signed:
    """A callback request as the platform sends it."""

    query: dict[str, str]
    body: str


def wechat_plain(xml: str, *, timestamp: int | None = None, token: str = MP_TOKEN) -> Signed:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    return Signed({"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}, xml)


def _envelope(encrypted_reply: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in fromstring(encrypted_reply)}


def wechat_safe(xml: str, *, timestamp: int | None = None) -> Signed:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    crypto = WeChatCrypto(MP_TOKEN, MP_AES_KEY, MP_APPID)
    envelope = _envelope(crypto.encrypt_message(xml, nonce, ts))
    body = (
        f"<xml><ToUserName><![CDATA[{MP_ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    query = {
        "signature": sign(MP_TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "openid": "ignored",
        "encrypt_type": "aes",
        "msg_signature": envelope["MsgSignature"],
    }
    return Signed(query, body)


def wecom_signed(xml: str, corp_id: str, agent_id: int, *, timestamp: int | None = None) -> Signed:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    crypto = WeComCrypto(WECOM_TOKEN, WECOM_AES_KEY, corp_id)
    envelope = _envelope(crypto.encrypt_message(xml, nonce, ts))
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><AgentID>{agent_id}</AgentID>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    return Signed(
        {"msg_signature": envelope["MsgSignature"], "timestamp": ts, "nonce": nonce}, body
    )


def post(client, path: str, signed: Signed):  # type: ignore[no-untyped-def]
    return client.post(
        path, query_string=signed.query, data=signed.body.encode(), content_type="text/xml"
    )


def reply_content(response, *, safe: bool = False, wecom_corp: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """The text of a passive reply, decrypted with the account's key when encrypted."""
    body = response.get_data(as_text=True)
    if body == "success":
        return ""
    if wecom_corp is not None or safe:
        envelope = _envelope(body)
        if wecom_corp is not None:
            crypto: Any = WeComCrypto(WECOM_TOKEN, WECOM_AES_KEY, wecom_corp)
        else:
            crypto = WeChatCrypto(MP_TOKEN, MP_AES_KEY, MP_APPID)
        body = crypto.decrypt_message(
            envelope, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
        )
    fields = {child.tag: child.text or "" for child in fromstring(body)}
    return fields["Content"]


@dataclass
class Stubs:
    wechat: WeChatStub
    wecom: WeComStub
    dingtalk: DingTalkStub
    feishu: FeishuStub
    wecom_robot_key: str
    ding_robot: tuple[str, str]
    feishu_robot: tuple[str, str]

    def close(self) -> None:
        for stub in (self.wechat, self.wecom, self.dingtalk, self.feishu):
            stub.stop()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    wechat = WeChatStub(appid=MP_APPID, secret=MP_SECRET).start()
    wechat.add_app(WXA_APPID, WXA_SECRET)  # the mini-program, on the same API host
    wechat.add_subscribe_template(SUBSCRIBE_TEMPLATE_ID, SUBSCRIBE_KEYS)
    wecom, dingtalk, feishu = WeComStub().start(), DingTalkStub().start(), FeishuStub().start()
    found = Stubs(
        wechat,
        wecom,
        dingtalk,
        feishu,
        wecom.add_robot(),
        dingtalk.add_robot(),
        feishu.add_robot(),
    )
    yield found
    found.close()


def chat_config(app_config, stubs: Stubs, **overrides: Any):  # type: ignore[no-untyped-def]
    robots = {
        "meilan-wecom": {"channel": "wecom_robot", "key": stubs.wecom_robot_key},
        "meilan-ding": {
            "channel": "dingtalk_robot",
            "access_token": stubs.ding_robot[0],
            "secret": stubs.ding_robot[1],
        },
        "meilan-feishu": {
            "channel": "feishu_robot",
            "token": stubs.feishu_robot[0],
            "secret": stubs.feishu_robot[1],
        },
    }
    settings = dict(
        WECHAT_APP_ID=MP_APPID,
        WECHAT_APP_SECRET=MP_SECRET,
        WECHAT_TOKEN=MP_TOKEN,
        WECHAT_AES_KEY=MP_AES_KEY,
        WECHAT_API_BASE=stubs.wechat.base_url,
        WECHAT_TEMPLATE_ID=TEMPLATE_ID,
        WXA_APP_ID=WXA_APPID,
        WXA_APP_SECRET=WXA_SECRET,
        WXA_SUBSCRIBE_TEMPLATE_ID=SUBSCRIBE_TEMPLATE_ID,
        WXA_SUBSCRIBE_KEYS=",".join(SUBSCRIBE_KEYS),
        WECOM_CORP_ID=stubs.wecom.corp_id,
        WECOM_AGENT_ID=stubs.wecom.agent_id,
        WECOM_SECRET=stubs.wecom.secret,
        WECOM_TOKEN=WECOM_TOKEN,
        WECOM_AES_KEY=WECOM_AES_KEY,
        WECOM_API_BASE=stubs.wecom.base_url,
        DINGTALK_API_BASE=stubs.dingtalk.base_url,
        FEISHU_API_BASE=stubs.feishu.base_url,
        CHAT_ROBOTS=json.dumps(robots),
        CHAT_HTTP_TIMEOUT_S=2.0,
        OUTBOX_BACKOFF_BASE_S=0.05,
        OUTBOX_BACKOFF_CAP_S=0.2,
        PUBLIC_URL="https://mcll.example.cn",
    )
    settings.update(overrides)
    return dataclasses.replace(app_config, **settings)


@pytest.fixture
def world(app, client, stubs):  # type: ignore[no-untyped-def]
    """Meilan district: a market-regulation agency with three group robots, a centre, its
    operator on the official account and an inspector on WeCom."""
    meilan = f.district("美兰区")
    market = f.agency(meilan, prefix="美兰市监整")
    market.chat_destinations = {
        "wecom_robot": "meilan-wecom",
        "dingtalk_robot": "meilan-ding",
        "feishu_robot": "meilan-feishu",
    }
    centre = f.centre(meilan, "阳光小树苗托管中心")
    inspector = f.inspector_of(market)
    inspector.wecom_userid = "wang.jianguan"
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator-openid-000000000"
    db.session.commit()
    stubs.wecom.members.add("wang.jianguan")
    stubs.wechat.follow(operator.wechat_openid)
    yield {
        "centre": centre,
        "agency": market,
        "inspector": inspector,
        "operator": operator,
        "inspector_h": f.login(client, inspector.username),
        "operator_h": f.login(client, operator.username),
    }


@pytest.fixture
def close_channels(app):  # type: ignore[no-untyped-def]
    """The app's channel adapters keep HTTP sessions: close them with the test."""
    yield
    app.extensions["bk_chat"].close()
