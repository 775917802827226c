"""A parent who uses only the mini-program hears what became of their concern by a subscription
message (订阅消息) — one message per grant they gave, sent with the mini-program's own token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Channel, Notification, NotificationStatus
from bots.dispatcher import drain
from tests import factories as f
from tests.bots_support import (
    SUBSCRIBE_TEMPLATE_ID,
    WXA_APPID,
    chat_config,
)
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.bots_support import world as _world

stubs, world, close_channels = _stubs, _world, _close_channels
pytestmark = pytest.mark.usefixtures("close_channels")
WXA_OPENID = "o-wxa-parent-0000000000000"
TIME = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}$")


@pytest.fixture
def app_config(app_config, stubs):
    return chat_config(app_config, stubs)


@pytest.fixture
def parent(world, client):
    """A parent of the centre known only to the mini-program (no official-account openid)."""
    row = f.parent_of(world["centre"], wechat_openid=None, wxa_openid=WXA_OPENID)
    db.session.commit()
    return {"user": row, "h": f.login(client, row.username)}


def submit(client, world, parent, text: str = "厨房垃圾桶没有盖子，苍蝇很多") -> int:
    response = client.post(
        "/api/v1/parent/concerns",
        data={"centre_id": str(world["centre"].id), "text": text, "client_key": text[:30]},
        headers=parent["h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def triage(client, world, concern_id: int, action: str, **body) -> None:
    response = client.post(
        f"/api/v1/inspector/concerns/{concern_id}/{action}",
        json=body,
        headers=world["inspector_h"],
    )
    assert response.status_code == 200, response.get_json()


def to_parent(parent) -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.recipient_id == parent["user"].id)
            .order_by(Notification.id)
        )
    )


def test_the_parent_hears_the_concern_was_accepted_by_subscription_message(
    app, client, world, stubs, parent
):
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    concern_id = submit(client, world, parent)
    triage(client, world, concern_id, "accept")
    drain(app)

    [message] = stubs.wechat.subscribe_messages
    assert message["touser"] == WXA_OPENID
    assert message["template_id"] == SUBSCRIBE_TEMPLATE_ID
    data = {key: value["value"] for key, value in message["data"].items()}
    assert data["thing1"] == "厨房垃圾桶没有盖子，苍蝇很多"
    assert data["phrase2"] == "已受理"
    assert TIME.match(data["time3"]), data["time3"]
    assert data["thing4"] == "详情请在小程序中查看"
    assert [r.status for r in to_parent(parent)] == [NotificationStatus.SENT]
    assert stubs.wechat.grants_left(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID) == 0


def test_the_mini_program_s_own_access_token_sends_it(app, client, world, stubs, parent):
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    triage(client, world, submit(client, world, parent), "accept")
    drain(app)
    assert [c.query["appid"] for c in stubs.wechat.calls_to("/cgi-bin/token")] == [WXA_APPID]
    assert stubs.wechat.calls_to("/cgi-bin/message/custom/send") == []
    assert stubs.wechat.calls_to("/cgi-bin/message/template/send") == []


def test_the_submitted_receipt_does_not_spend_the_parent_s_grant(app, client, world, stubs, parent):
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    submit(client, world, parent)
    drain(app)
    assert to_parent(parent) == []  # they saw "已提交" on screen
    assert stubs.wechat.grants_left(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID) == 1


def test_without_a_grant_the_row_fails_with_the_reason_and_is_not_retried(
    app, client, world, stubs, parent
):
    stubs.wechat.wxa_user(WXA_OPENID, WXA_APPID)
    triage(client, world, submit(client, world, parent), "dismiss", reason="与后厨无关")
    drain(app)
    drain(app)
    [row] = to_parent(parent)
    assert row.status is NotificationStatus.FAILED
    assert row.attempts == 1
    assert "43101" in row.last_error
    assert len(stubs.wechat.calls_to("/cgi-bin/message/subscribe/send")) == 1
    assert stubs.wechat.subscribe_messages == []


def test_each_grant_lets_exactly_one_message_through(app, client, world, stubs, parent):
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    concern_id = submit(client, world, parent)
    triage(client, world, concern_id, "accept")
    drain(app)
    triage(client, world, concern_id, "resolve", answer="已督促整改，垃圾桶已加盖")
    drain(app)
    accepted, resolved = to_parent(parent)
    assert (accepted.event, accepted.status) == ("concern.accepted", NotificationStatus.SENT)
    assert (resolved.event, resolved.status) == ("concern.resolved", NotificationStatus.FAILED)
    assert "43101" in resolved.last_error

    # The parent grants again in the mini-program: the next outcome gets through.
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    other = submit(client, world, parent, text="冰箱里生熟混放")
    triage(client, world, other, "dismiss", reason="已核实，生熟分开存放")
    drain(app)
    assert [m["data"]["phrase2"]["value"] for m in stubs.wechat.subscribe_messages] == [
        "已受理",
        "不予受理",
    ]
    assert stubs.wechat.subscribe_messages[-1]["data"]["thing4"]["value"] == "已核实，生熟分开存放"


def test_long_words_are_cut_to_the_template_s_rules(app, client, world, stubs, parent):
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    long_text = "操作间的地面一直有积水，" * 10
    concern_id = submit(client, world, parent, text=long_text)
    triage(client, world, concern_id, "accept")
    triage(client, world, concern_id, "resolve", answer="已责令整改。\n排水沟已疏通，" * 5)
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    drain(app)
    assert {r.status for r in to_parent(parent)} == {NotificationStatus.SENT}
    resolved = stubs.wechat.subscribe_messages[-1]["data"]
    assert len(resolved["thing1"]["value"]) == 20
    assert resolved["thing1"]["value"].endswith("…")
    assert len(resolved["thing4"]["value"]) <= 20 and "\n" not in resolved["thing4"]["value"]
    assert resolved["phrase2"]["value"] == "已办结"


def test_a_parent_who_follows_the_official_account_is_told_there(app, client, world, stubs, parent):
    user = db.session.merge(parent["user"])
    user.wechat_openid = "o-mp-parent-000000000000000"
    db.session.commit()
    stubs.wechat.follow(user.wechat_openid)
    stubs.wechat.grant_subscription(WXA_OPENID, SUBSCRIBE_TEMPLATE_ID, appid=WXA_APPID)
    triage(client, world, submit(client, world, parent), "accept")
    drain(app)
    assert stubs.wechat.subscribe_messages == []
    accepted = [m for m in stubs.wechat.template_messages if "已受理" in str(m)]
    assert [m["touser"] for m in accepted] == [user.wechat_openid]
    rows = to_parent(parent)
    assert {r.channel for r in rows} == {Channel.WECHAT_MP}
    assert {r.status for r in rows} == {NotificationStatus.SENT}
