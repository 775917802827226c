"""The official account's callback, /wechat/callback, as WeChat calls it: signatures, safe mode,
retries and hostile XML."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import InboundMessage
from tests.bots_support import (
    MP_TOKEN,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    chat_config,
    event_xml,
    next_msg_id,
    post,
    reply_content,
    sign,
    text_xml,
    wechat_plain,
    wechat_safe,
    wecom_signed,
)
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.bots_support import world as _world

# Fixtures from tests/bots_support.py: the platform stubs, the Meilan world, channel clean-up.
stubs, world, close_channels = _stubs, _world, _close_channels
pytestmark = pytest.mark.usefixtures("close_channels")
PATH = "/wechat/callback"


@pytest.fixture
def app_config(app_config, stubs):
    return chat_config(app_config, stubs)


def stored() -> int:
    return db.session.scalar(select(func.count(InboundMessage.id)))


def test_echo_verification_returns_the_echo_string(client):
    ts, nonce = str(int(time.time())), "n0nce"
    query = {
        "signature": sign(MP_TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": "7128963402183516",
    }
    response = client.get(PATH, query_string=query)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "7128963402183516"


def test_echo_with_a_wrong_signature_is_403(client):
    ts = str(int(time.time()))
    query = {"signature": "0" * 40, "timestamp": ts, "nonce": "x", "echostr": "123"}
    assert client.get(PATH, query_string=query).status_code == 403


def test_a_signed_plain_message_gets_a_text_reply(client, world):
    openid = world["operator"].wechat_openid
    response = post(client, PATH, wechat_plain(text_xml(openid, "通知")))
    assert response.status_code == 200
    assert "目前没有待处理的整改通知" in reply_content(response)


def test_a_safe_mode_message_round_trips_and_the_reply_decrypts_with_the_account_key(client, world):
    openid = world["operator"].wechat_openid
    response = post(client, PATH, wechat_safe(text_xml(openid, "帮助")))
    assert response.status_code == 200
    assert "<Encrypt>" in response.get_data(as_text=True)
    assert "收到 17" in reply_content(response, safe=True)


def test_a_forged_signature_is_403_and_nothing_is_stored(client, world):
    signed = wechat_plain(text_xml(world["operator"].wechat_openid, "通知"))
    signed.query["signature"] = sign("not-our-token", signed.query["timestamp"], "x")
    assert post(client, PATH, signed).status_code == 403
    assert stored() == 0


def test_a_forged_safe_mode_message_signature_is_403(client, world):
    signed = wechat_safe(text_xml(world["operator"].wechat_openid, "通知"))
    signed.query["msg_signature"] = "f" * 40
    assert post(client, PATH, signed).status_code == 403
    assert stored() == 0


def test_a_stale_timestamp_is_403_even_with_a_valid_signature(client, world):
    stale = int(time.time()) - 6 * 60
    signed = wechat_plain(text_xml(world["operator"].wechat_openid, "通知"), timestamp=stale)
    response = post(client, PATH, signed)
    assert response.status_code == 403
    assert response.get_json()["reason"] == "stale_timestamp"
    assert stored() == 0


def test_a_replayed_request_is_answered_the_same_and_recorded_once(client, world):
    signed = wechat_plain(text_xml(world["operator"].wechat_openid, "通知"))
    first = post(client, PATH, signed)
    again = post(client, PATH, signed)
    assert again.status_code == 200
    assert reply_content(again) == reply_content(first)
    assert stored() == 1


def test_the_same_msgid_three_times_is_one_record(client, world):
    openid, msg_id = world["operator"].wechat_openid, next_msg_id()
    answers = [
        post(client, PATH, wechat_plain(text_xml(openid, "帮助", msg_id=msg_id))) for _ in range(3)
    ]
    assert {reply_content(a) for a in answers} == {reply_content(answers[0])}
    assert stored() == 1


def test_events_are_deduplicated_by_sender_time_and_event(client, world):
    openid, created = world["operator"].wechat_openid, int(time.time())
    for _ in range(3):
        post(client, PATH, wechat_plain(event_xml(openid, "subscribe", created=created)))
    post(client, PATH, wechat_plain(event_xml(openid, "subscribe", created=created + 1)))
    assert stored() == 2


def test_a_menu_click_runs_the_same_command(client, world):
    openid = world["operator"].wechat_openid
    response = post(client, PATH, wechat_plain(event_xml(openid, "CLICK", "BK_NOTICES")))
    assert "目前没有待处理的整改通知" in reply_content(response)


def test_unknown_input_gets_the_help_text(client, world):
    response = post(client, PATH, wechat_plain(text_xml(world["operator"].wechat_openid, "你好")))
    assert "可用指令" in reply_content(response)


def test_a_stranger_is_told_how_to_bind(client, world):
    response = post(client, PATH, wechat_plain(text_xml("o-stranger", "通知")))
    assert "尚未绑定" in reply_content(response)


XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>o-x</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<xml><ToUserName>a</ToUserName><FromUserName>o-x</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol4;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (XXE, 400),
        (BILLION_LAUGHS, 400),
        ("this is not xml", 400),
        ('{"MsgType": "text"}', 400),
        ("<xml><MsgType>text</MsgType>" + "<Content>" + "x" * 70_000 + "</Content></xml>", 413),
        ("<html><body>hi</body></html>", 400),
    ],
    ids=["xxe", "billion-laughs", "not-xml", "json", "oversized", "not-a-callback"],
)
def test_hostile_or_malformed_bodies_are_refused_and_nothing_is_stored(client, body, status):
    response = post(client, PATH, wechat_plain(body))
    assert response.status_code == status
    assert response.get_json()["error"]
    assert stored() == 0


def test_hostile_xml_inside_the_safe_mode_envelope_is_refused(client):
    response = post(client, PATH, wechat_safe(XXE))
    assert response.status_code == 400
    assert stored() == 0


# --- WeCom -----------------------------------------------------------------------------------


def wecom_echo(corp_id: str, plain: str) -> dict[str, str]:
    from wechatpy.work.crypto import PrpCrypto, WeChatCrypto

    crypto = WeChatCrypto(WECOM_TOKEN, WECOM_AES_KEY, corp_id)
    echo = PrpCrypto(crypto.key).encrypt(plain, corp_id).decode()
    ts, nonce = str(int(time.time())), "n0nce"
    return {
        "msg_signature": sign(WECOM_TOKEN, ts, nonce, echo),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echo,
    }


def test_wecom_echo_verification_returns_the_decrypted_echo(client, stubs):
    response = client.get("/wecom/callback", query_string=wecom_echo(stubs.wecom.corp_id, "e-42"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "e-42"


def test_a_wecom_message_with_a_forged_signature_is_403(client, world, stubs):
    corp, agent = stubs.wecom.corp_id, stubs.wecom.agent_id
    signed = wecom_signed(text_xml("wang.jianguan", "通知", to=corp, agent_id=agent), corp, agent)
    signed.query["msg_signature"] = sign("forged", signed.query["timestamp"], "x")
    assert post(client, "/wecom/callback", signed).status_code == 403
    assert stored() == 0


def test_a_wecom_message_encrypted_for_another_corp_is_refused(client, world, stubs):
    agent = stubs.wecom.agent_id
    xml = text_xml("wang.jianguan", "通知", to="ww-other", agent_id=agent)
    response = post(client, "/wecom/callback", wecom_signed(xml, "ww-other", agent))
    assert response.status_code == 400
    assert stored() == 0


def wecom_post(client, stubs, xml: str, **kwargs):  # type: ignore[no-untyped-def]
    corp, agent = stubs.wecom.corp_id, stubs.wecom.agent_id
    return post(client, "/wecom/callback", wecom_signed(xml, corp, agent, **kwargs))


def wecom_text(stubs, text: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    return text_xml(
        "wang.jianguan", text, to=stubs.wecom.corp_id, agent_id=stubs.wecom.agent_id, **kwargs
    )


def test_a_wecom_message_with_a_stale_timestamp_is_403_even_when_signed(client, world, stubs):
    stale = int(time.time()) - 6 * 60
    response = wecom_post(client, stubs, wecom_text(stubs, "通知"), timestamp=stale)
    assert response.status_code == 403
    assert response.get_json()["reason"] == "stale_timestamp"
    assert stored() == 0


def test_a_replayed_wecom_request_is_answered_the_same_and_recorded_once(client, world, stubs):
    corp, agent = stubs.wecom.corp_id, stubs.wecom.agent_id
    signed = wecom_signed(wecom_text(stubs, "通知"), corp, agent)
    first = post(client, "/wecom/callback", signed)
    again = post(client, "/wecom/callback", signed)
    assert again.status_code == 200
    assert reply_content(again, wecom_corp=corp) == reply_content(first, wecom_corp=corp)
    assert "辖区内目前没有未结的整改通知" in reply_content(first, wecom_corp=corp)
    assert stored() == 1


@pytest.mark.parametrize("body", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_hostile_xml_inside_the_wecom_envelope_is_refused(client, stubs, body):
    response = wecom_post(client, stubs, body)
    assert response.status_code == 400
    assert response.get_json()["reason"] == "forbidden_xml"
    assert stored() == 0


def test_a_hostile_wecom_envelope_is_refused_before_any_decryption(client, stubs):
    signed = wecom_signed(wecom_text(stubs, "通知"), stubs.wecom.corp_id, stubs.wecom.agent_id)
    signed.body = XXE
    response = post(client, "/wecom/callback", signed)
    assert response.status_code == 400
    assert response.get_json()["reason"] == "forbidden_xml"
    assert stored() == 0
