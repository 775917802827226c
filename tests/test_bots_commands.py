"""Operators and inspectors act on rectification notices from chat: the official account and
WeCom, with photos sent as separate image messages."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Attachment, Concern, InboundMessage, NoticeResponse, Role, User
from bots.dispatcher import drain
from tests import factories as f
from tests.bots_support import (
    chat_config,
    event_xml,
    image_xml,
    next_msg_id,
    png,
    post,
    reply_content,
    text_xml,
    wechat_plain,
    wecom_signed,
)
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.bots_support import world as _world
from tests.test_bots_links import opens_for
from tests.test_notices import issued_notice

# Fixtures from tests/bots_support.py: the platform stubs, the Meilan world, channel clean-up.
stubs, world, close_channels = _stubs, _world, _close_channels
pytestmark = pytest.mark.usefixtures("close_channels")
WECHAT, WECOM = "/wechat/callback", "/wecom/callback"


@pytest.fixture
def app_config(app_config, stubs):
    return chat_config(app_config, stubs)


def say(client, world, text: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    openid = world["operator"].wechat_openid
    response = post(client, WECHAT, wechat_plain(text_xml(openid, text, **kwargs)))
    assert response.status_code == 200
    return reply_content(response)


def send_photo(client, world, stubs, color: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    media_id = stubs.wechat.add_media(png(color))
    openid = world["operator"].wechat_openid
    response = post(client, WECHAT, wechat_plain(image_xml(openid, media_id, **kwargs)))
    assert response.status_code == 200
    return reply_content(response)


def inspector_says(client, stubs, text: str) -> str:  # type: ignore[no-untyped-def]
    xml = text_xml("wang.jianguan", text, to=stubs.wecom.corp_id, agent_id=stubs.wecom.agent_id)
    response = post(client, WECOM, wecom_signed(xml, stubs.wecom.corp_id, stubs.wecom.agent_id))
    assert response.status_code == 200
    return reply_content(response, wecom_corp=stubs.wecom.corp_id)


def notice_status(client, world, notice_id: int) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/notices/{notice_id}", headers=world["operator_h"])
    return response.get_json()["status"]


def test_the_operator_lists_open_notices_with_their_ids_and_deadlines(client, world):
    notice = issued_notice(client, world)
    answer = say(client, world, "通知")
    assert f"[{notice['id']}] {notice['number']}" in answer
    assert notice["deadline"] in answer


def test_the_operator_acknowledges_from_chat_and_the_notice_moves(client, world):
    notice = issued_notice(client, world)
    answer = say(client, world, f"收到 {notice['id']}")
    assert f"已签收整改通知 {notice['number']}" in answer
    assert notice_status(client, world, notice["id"]) == "acknowledged"


def test_full_width_digits_and_no_space_are_understood(client, world):
    notice = issued_notice(client, world)
    digits = "".join(chr(0xFF10 + int(d)) for d in str(notice["id"]))
    say(client, world, f"收到{digits}")
    assert notice_status(client, world, notice["id"]) == "acknowledged"


def test_acknowledging_twice_explains_the_state_instead_of_failing(client, world):
    notice = issued_notice(client, world)
    say(client, world, f"收到 {notice['id']}")
    assert "不能执行此操作" in say(client, world, f"收到 {notice['id']}")


def test_a_retried_acknowledgement_has_one_effect(client, world):
    notice = issued_notice(client, world)
    msg_id = next_msg_id()
    answers = {say(client, world, f"收到 {notice['id']}", msg_id=msg_id) for _ in range(3)}
    assert len(answers) == 1 and "已签收" in answers.pop()
    history = client.get(f"/api/v1/notices/{notice['id']}", headers=world["operator_h"]).get_json()[
        "history"
    ]
    assert [h["to_status"] for h in history].count("acknowledged") == 1


def test_text_then_two_photos_make_one_answer_with_both_photos(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"收到 {notice['id']}")
    answer = say(client, world, f"整改 {notice['id']} 已为垃圾桶加盖并建立检查制度")
    assert "已提交整改回复" in answer
    assert "已收到照片" in send_photo(client, world, stubs, "red")
    send_photo(client, world, stubs, "blue")

    assert notice_status(client, world, notice["id"]) == "responded"
    [response] = db.session.scalars(select(NoticeResponse)).all()
    assert response.text == "已为垃圾桶加盖并建立检查制度"
    assert len(response.photos) == 2
    assert len(stubs.wechat.calls_to("/cgi-bin/media/get")) == 2


def test_photos_sent_before_the_text_join_the_answer(client, world, stubs):
    notice = issued_notice(client, world)
    assert "请发送“整改 编号 整改说明”" in send_photo(client, world, stubs, "green")
    say(client, world, f"整改 {notice['id']} 已整改")
    [response] = db.session.scalars(select(NoticeResponse)).all()
    assert len(response.photos) == 1


def test_a_photo_retried_by_wechat_is_downloaded_and_attached_once(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    msg_id = next_msg_id()
    media_id = stubs.wechat.add_media(png("purple"))
    openid = world["operator"].wechat_openid
    for _ in range(3):
        post(client, WECHAT, wechat_plain(image_xml(openid, media_id, msg_id=msg_id)))
    assert db.session.scalar(select(func.count(Attachment.id))) == 1
    assert len(stubs.wechat.calls_to("/cgi-bin/media/get")) == 1


def test_a_photo_that_is_not_an_image_is_kept_with_its_error(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    media_id = stubs.wechat.add_media(b"not an image at all")
    post(client, WECHAT, wechat_plain(image_xml(world["operator"].wechat_openid, media_id)))
    row = db.session.scalar(select(InboundMessage).where(InboundMessage.msg_type == "image"))
    assert row.error and "不是可识别的图片" in row.error
    assert db.session.scalar(select(func.count(Attachment.id))) == 0


def test_answering_without_text_asks_for_it(client, world):
    notice = issued_notice(client, world)
    assert "请写明整改情况" in say(client, world, f"整改 {notice['id']}")
    assert notice_status(client, world, notice["id"]) == "issued"


def test_an_operator_cannot_touch_another_centres_notice_from_chat(client, world):
    assert "找不到该整改通知" in say(client, world, "收到 999")


def test_deadlines_show_days_left(client, world):
    notice = issued_notice(client, world)
    answer = say(client, world, "期限")
    assert f"[{notice['id']}]" in answer and "还剩" in answer


def test_the_inspector_verifies_from_wecom(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    listing = inspector_says(client, stubs, "通知")
    assert "待复查 1 件" in listing and f"[{notice['id']}]" in listing
    assert "已复查通过" in inspector_says(client, stubs, f"通过 {notice['id']} 照片清楚")
    body = client.get(f"/api/v1/notices/{notice['id']}", headers=world["operator_h"]).get_json()
    assert body["status"] == "verified"
    assert body["review_mode"] == "live_video"


def test_the_inspector_returns_with_a_reason_from_wecom(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    inspector_says(client, stubs, f"退回 {notice['id']} 现场 桶盖仍未盖好")
    body = client.get(f"/api/v1/notices/{notice['id']}", headers=world["operator_h"]).get_json()
    assert body["status"] == "returned"
    assert body["review_mode"] == "on_site"
    assert body["history"][-1]["reason"] == "桶盖仍未盖好"


def test_a_photo_after_the_review_is_held_for_the_next_round(client, world, stubs):
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    inspector_says(client, stubs, f"退回 {notice['id']} 请补拍照片")
    send_photo(client, world, stubs, "orange")
    say(client, world, f"整改 {notice['id']} 补拍照片")
    responses = db.session.scalars(select(NoticeResponse).order_by(NoticeResponse.round)).all()
    assert [len(r.photos) for r in responses] == [0, 1]


def test_an_operator_cannot_use_inspector_commands(client, world):
    notice = issued_notice(client, world)
    assert "可用指令" in say(client, world, f"通过 {notice['id']}")
    assert notice_status(client, world, notice["id"]) == "issued"


# --- parents ---------------------------------------------------------------------------------


@pytest.fixture
def parent(world):  # type: ignore[no-untyped-def]
    """A parent of the centre, known to the official account by their openid."""
    row = f.parent_of(world["centre"])
    db.session.commit()
    return row


def parent_says(client, parent, text: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    response = post(client, WECHAT, wechat_plain(text_xml(parent.wechat_openid, text, **kwargs)))
    assert response.status_code == 200
    return reply_content(response)


def test_a_parent_binds_with_an_invite_code_from_chat(client, world):
    newcomer = f.user(Role.PARENT, wechat_openid="o-new-parent", username=None, password_hash=None)
    db.session.commit()
    code = client.post(
        f"/api/v1/centres/{world['centre'].id}/invite-codes", json={}, headers=world["operator_h"]
    )
    assert code.status_code == 201, code.get_json()
    answer = parent_says(client, newcomer, f"绑定 {code.get_json()['code']}")
    assert "已绑定阳光小树苗托管中心" in answer
    assert f"/#/parent/centre/{world['centre'].id}" in parent_says(client, newcomer, "直播")


def test_a_wrong_invite_code_is_explained(client, world, parent):
    assert "邀请码不存在" in parent_says(client, parent, "绑定 ZZZZ2222")


def test_a_parent_reports_a_concern_with_the_photos_sent_before_it(client, world, stubs, parent):
    media_id = stubs.wechat.add_media(png("yellow"))
    post(client, WECHAT, wechat_plain(image_xml(parent.wechat_openid, media_id)))
    answer = parent_says(client, parent, "反映 厨师没有戴口罩")
    assert "已提交反映" in answer and "附照片 1 张" in answer
    progress = parent_says(client, parent, "进度")
    assert "厨师没有戴口罩" in progress and "待受理" in progress


def test_a_retried_concern_message_makes_one_concern(client, world, parent):
    msg_id = next_msg_id()
    for _ in range(3):
        parent_says(client, parent, "反映 地面有积水", msg_id=msg_id)
    assert db.session.scalar(select(func.count(Concern.id))) == 1


def test_a_parent_gets_the_live_page_link(client, world, parent):
    answer = parent_says(client, parent, "直播")
    [url] = re.findall(r"https?://\S+", answer)
    assert url == f"https://mcll.example.cn/#/parent/centre/{world['centre'].id}"
    assert opens_for(url, "parent")  # a page main.js routes, open to parents


def test_photos_sent_after_a_concern_join_it(client, world, stubs, parent):
    answer = parent_says(client, parent, "反映 冰箱里生熟食品混放")
    assert "已提交反映" in answer
    for color in ("red", "blue"):
        media_id = stubs.wechat.add_media(png(color))
        assert post(client, WECHAT, wechat_plain(image_xml(parent.wechat_openid, media_id)))
    db.session.rollback()
    concern = db.session.scalar(select(Concern))
    assert concern.text == "冰箱里生熟食品混放"
    assert len(concern.photos) == 2


def test_a_new_follower_becomes_a_parent_by_binding_from_chat(client, world):
    code = client.post(
        f"/api/v1/centres/{world['centre'].id}/invite-codes", json={}, headers=world["operator_h"]
    ).get_json()["code"]
    stranger = type("Follower", (), {"wechat_openid": "o-brand-new-follower"})()
    assert "阳光小树苗托管中心" not in parent_says(client, stranger, "进度")
    assert "已绑定阳光小树苗托管中心" in parent_says(client, stranger, f"绑定 {code}")
    db.session.rollback()
    parent = db.session.scalar(select(User).where(User.wechat_openid == "o-brand-new-follower"))
    assert parent.role is Role.PARENT
    assert parent.username is None and parent.phone is None
    assert "您还没有提交过反映" in parent_says(client, stranger, "进度")


# --- the photo window ------------------------------------------------------------------------


def _backdate(model, row_id: int, column: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    row = db.session.get(model, row_id)
    setattr(row, column, getattr(row, column) - timedelta(seconds=seconds))
    db.session.commit()


def test_a_photo_after_the_photo_window_joins_no_answer(app, client, world, stubs):
    window = app.config["CHAT_PHOTO_WINDOW_S"]
    notice = issued_notice(client, world)
    say(client, world, f"整改 {notice['id']} 已整改")
    [response] = db.session.scalars(select(NoticeResponse)).all()
    _backdate(NoticeResponse, response.id, "submitted_at", window + 1)

    answer = send_photo(client, world, stubs, "red")
    assert "请发送“整改 编号 整改说明”" in answer  # the operator is told it joined nothing
    db.session.expire_all()
    assert db.session.get(NoticeResponse, response.id).photos == []


def test_a_held_photo_older_than_the_window_joins_nothing_later(app, client, world, stubs):
    window = app.config["CHAT_PHOTO_WINDOW_S"]
    notice = issued_notice(client, world)
    send_photo(client, world, stubs, "red")  # held: no answer is open
    [photo] = db.session.scalars(select(InboundMessage).where(InboundMessage.msg_type == "image"))
    _backdate(InboundMessage, photo.id, "received_at", window + 1)

    answer = say(client, world, f"整改 {notice['id']} 已整改")
    assert "已提交整改回复" in answer and "已附照片" not in answer
    [response] = db.session.scalars(select(NoticeResponse)).all()
    assert response.photos == []


def test_a_parent_s_photo_after_the_window_joins_no_concern(app, client, world, stubs, parent):
    window = app.config["CHAT_PHOTO_WINDOW_S"]
    parent_says(client, parent, "反映 地面有积水")
    concern = db.session.scalar(select(Concern))
    _backdate(Concern, concern.id, "submitted_at", window + 1)
    media_id = stubs.wechat.add_media(png("blue"))
    post(client, WECHAT, wechat_plain(image_xml(parent.wechat_openid, media_id)))
    db.session.expire_all()
    assert db.session.get(Concern, concern.id).photos == []


# --- an operator on WeCom ----------------------------------------------------------------------


@pytest.fixture
def wecom_operator(world, stubs):  # type: ignore[no-untyped-def]
    operator = db.session.merge(world["operator"])
    operator.wecom_userid = "li.jingying"
    db.session.commit()
    stubs.wecom.members.add("li.jingying")
    return operator


def operator_on_wecom(client, stubs, xml: str) -> str:  # type: ignore[no-untyped-def]
    corp, agent = stubs.wecom.corp_id, stubs.wecom.agent_id
    response = post(client, WECOM, wecom_signed(xml, corp, agent))
    assert response.status_code == 200
    return reply_content(response, wecom_corp=corp)


def wecom_says(client, stubs, text: str) -> str:  # type: ignore[no-untyped-def]
    xml = text_xml("li.jingying", text, to=stubs.wecom.corp_id, agent_id=stubs.wecom.agent_id)
    return operator_on_wecom(client, stubs, xml)


def test_an_operator_on_wecom_is_told_there_and_answers_from_there(
    app, client, world, stubs, wecom_operator
):
    notice = issued_notice(client, world)
    drain(app)
    [told] = [m for m in stubs.wecom.app_messages if m["to"] == "li.jingying"]
    assert f"收到 {notice['id']}" in told["text"]["content"]
    assert f"#/operator/notice/{notice['id']}" in told["text"]["content"]
    assert stubs.wechat.template_messages == []  # WeCom first, not the official account too

    assert f"[{notice['id']}]" in wecom_says(client, stubs, "通知")
    assert "已签收整改通知" in wecom_says(client, stubs, f"收到 {notice['id']}")
    assert "已提交整改回复" in wecom_says(client, stubs, f"整改 {notice['id']} 已为垃圾桶加盖")
    stubs.wecom.media["m-lid"] = png("green")
    xml = image_xml("li.jingying", "m-lid", to=stubs.wecom.corp_id, agent_id=stubs.wecom.agent_id)
    assert "已收到照片，将附在整改回复" in operator_on_wecom(client, stubs, xml)

    assert notice_status(client, world, notice["id"]) == "responded"
    [response] = db.session.scalars(select(NoticeResponse)).all()
    assert response.text == "已为垃圾桶加盖" and len(response.photos) == 1
    assert [c["path"] for c in stubs.wecom.received if c["path"] == "/cgi-bin/media/get"] == [
        "/cgi-bin/media/get"
    ]


# --- a parent's menu ---------------------------------------------------------------------------


def click(client, openid: str, key: str, created: int) -> str:  # type: ignore[no-untyped-def]
    response = post(client, WECHAT, wechat_plain(event_xml(openid, "CLICK", key, created=created)))
    assert response.status_code == 200
    return reply_content(response)


def test_a_parent_s_menu_clicks_run_the_parent_commands(client, world, parent):
    openid, now = parent.wechat_openid, int(time.time())
    assert "您还没有提交过反映" in click(client, openid, "BK_PROGRESS", now)
    parent_says(client, parent, "反映 厨师没有戴帽子")
    progress = click(client, openid, "BK_PROGRESS", now + 1)
    assert "厨师没有戴帽子" in progress and "待受理" in progress
    live = click(client, openid, "BK_LIVE", now + 2)
    assert f"https://mcll.example.cn/#/parent/centre/{world['centre'].id}" in live
    assert "请在“绑定”后写邀请码" in click(client, openid, "BK_BIND", now + 3)
    assert "反映 问题描述" in click(client, openid, "BK_HELP", now + 4)
