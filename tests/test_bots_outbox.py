"""The outbox dispatcher delivers what the services wrote: to the operator on the official
account, the inspector on WeCom and the agency's three group robots — signed, paced, retried,
never twice."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Channel, Notification, NotificationStatus, utcnow
from app.services import outbox
from app.services.base import transaction
from bots.dispatcher import dispatch_once, drain
from tests.bots_support import (
    chat_config,
    post,
    text_xml,
    wechat_plain,
)
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.bots_support import world as _world
from tests.test_notices import issued_notice

# Fixtures from tests/bots_support.py: the platform stubs, the Meilan world, channel clean-up.
stubs, world, close_channels = _stubs, _world, _close_channels
pytestmark = pytest.mark.usefixtures("close_channels")


@pytest.fixture
def app_config(app_config, stubs):
    return chat_config(app_config, stubs)


def rows(event: str | None = None) -> list[Notification]:
    db.session.expire_all()
    query = select(Notification).order_by(Notification.id)
    if event:
        query = query.where(Notification.event == event)
    return list(db.session.scalars(query))


def robot_rows(agency, count: int, event: str = "notice.overdue") -> None:  # type: ignore[no-untyped-def]
    """`count` group messages for the agency, as the clocks would write them."""
    with transaction():
        for n in range(count):
            outbox.notify_agency_groups(
                agency, event, f"test:{n}", {"notice_id": n, "number": f"测试〔2026〕{n}号"}
            )


def deliver_until_settled(app, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        drain(app)
        if all(r.status is not NotificationStatus.PENDING for r in rows()):
            return
        time.sleep(0.05)


def test_an_issued_notice_reaches_the_operator_and_every_group_robot(app, client, world, stubs):
    notice = issued_notice(client, world)
    report = drain(app)
    assert len(report.sent) == 4
    assert {r.status for r in rows()} == {NotificationStatus.SENT}
    # The operator never wrote to the account: outside the 48 h window, a template message.
    [template] = stubs.wechat.template_messages
    assert template["touser"] == world["operator"].wechat_openid
    assert template["data"]["keyword1"]["value"] == notice["number"]
    assert template["url"] == f"https://mcll.example.cn/#/operator/notice/{notice['id']}"
    # The robots checked the signatures and kept the messages.
    [wecom] = stubs.wecom.robot_messages[stubs.wecom_robot_key]
    assert wecom["markdown"]["content"].startswith("**【整改通知】阳光小树苗托管中心**")
    assert notice["number"] in wecom["markdown"]["content"]
    [ding] = stubs.dingtalk.messages[stubs.ding_robot[0]]
    assert ding["markdown"]["title"] == "【整改通知】阳光小树苗托管中心"
    [feishu] = stubs.feishu.messages[stubs.feishu_robot[0]]
    assert notice["deadline"] in feishu["content"]["text"]
    assert stubs.dingtalk.refused == [] and stubs.feishu.refused == []


def test_group_messages_carry_no_chat_commands_but_the_operators_do(app, client, world, stubs):
    issued_notice(client, world)
    drain(app)
    [wecom] = stubs.wecom.robot_messages[stubs.wecom_robot_key]
    assert "收到" not in wecom["markdown"]["content"]
    [template] = stubs.wechat.template_messages
    assert "收到" in template["data"]["remark"]["value"]


def test_inside_the_48_hour_window_the_operator_gets_a_customer_service_message(
    app, client, world, stubs
):
    openid = world["operator"].wechat_openid
    stubs.wechat.user_wrote(openid)
    post(client, "/wechat/callback", wechat_plain(text_xml(openid, "通知")))
    notice = issued_notice(client, world)
    drain(app)
    [message] = stubs.wechat.custom_messages
    assert message["touser"] == openid
    assert notice["number"] in message["text"]["content"]
    assert stubs.wechat.template_messages == []


def test_when_wechat_says_the_window_closed_a_template_goes_instead(app, client, world, stubs):
    openid = world["operator"].wechat_openid
    post(client, "/wechat/callback", wechat_plain(text_xml(openid, "通知")))  # we saw a message
    stubs.wechat.user_wrote(openid, at=time.time() - 49 * 3600)  # but WeChat says 49 h ago
    issued_notice(client, world)
    drain(app)
    assert stubs.wechat.custom_messages == []
    assert len(stubs.wechat.template_messages) == 1
    assert rows("notice.issued")[0].status is NotificationStatus.SENT


def test_the_inspector_is_told_of_an_answer_in_wecom(app, client, world, stubs):
    notice = issued_notice(client, world)
    client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改"},
        headers=world["operator_h"],
        content_type="multipart/form-data",
    )
    drain(app)
    [message] = stubs.wecom.app_messages
    assert message["to"] == "wang.jianguan"
    assert f"通过 {notice['id']}" in message["text"]["content"]


def test_a_robot_down_for_a_while_gets_every_message_once_when_back(app, client, world, stubs):
    stubs.dingtalk.go_down("refused")
    stubs.feishu.go_down("5xx")
    for _ in range(3):
        issued_notice(client, world)
    drain(app)
    ding_rows = [r for r in rows() if r.channel is Channel.DINGTALK_ROBOT]
    assert {r.status for r in ding_rows} == {NotificationStatus.PENDING}
    assert all(r.attempts == 1 and "ConnectionError" in r.last_error for r in ding_rows)
    # The other channels were not held up.
    assert len(stubs.wecom.robot_messages[stubs.wecom_robot_key]) == 3

    stubs.dingtalk.come_back()
    stubs.feishu.come_back()
    deliver_until_settled(app)
    assert {r.status for r in rows()} == {NotificationStatus.SENT}
    for messages in (
        stubs.dingtalk.messages[stubs.ding_robot[0]],
        stubs.feishu.messages[stubs.feishu_robot[0]],
    ):
        numbers = [str(m) for m in messages]
        assert len(numbers) == 3 and len(set(numbers)) == 3


def test_once_a_robot_answers_again_its_backlog_goes_at_once(app, world, stubs):
    app.config.update(OUTBOX_BACKOFF_BASE_S=600.0, OUTBOX_BACKOFF_CAP_S=3600.0)
    stubs.dingtalk.go_down("refused")
    robot_rows(world["agency"], 3)
    drain(app)
    waiting = [r for r in rows() if r.channel is Channel.DINGTALK_ROBOT]
    assert {r.status for r in waiting} == {NotificationStatus.PENDING}
    assert all(r.next_attempt_at > utcnow() + timedelta(minutes=5) for r in waiting)

    # Back; the next message written for the robot goes through, and takes the backlog along.
    stubs.dingtalk.come_back()
    with transaction():
        outbox.notify_agency_groups(
            world["agency"],
            "notice.overdue",
            "test:later",
            {"notice_id": 9, "number": "后〔2026〕9号"},
        )
    drain(app)
    ding = [r for r in rows() if r.channel is Channel.DINGTALK_ROBOT]
    assert {r.status for r in ding} == {NotificationStatus.SENT}
    numbers = [str(m) for m in stubs.dingtalk.messages[stubs.ding_robot[0]]]
    assert len(numbers) == 4 and len(set(numbers)) == 4


def test_a_destination_that_never_recovers_fails_after_the_last_attempt(app, world, stubs):
    stubs.feishu.go_down("refused")
    robot_rows(world["agency"], 1)
    deliver_until_settled(app)
    [feishu] = [r for r in rows() if r.channel is Channel.FEISHU_ROBOT]
    assert feishu.status is NotificationStatus.FAILED
    assert feishu.attempts == app.config["OUTBOX_MAX_ATTEMPTS"]
    assert feishu.last_error and stubs.feishu_robot[0] not in feishu.last_error
    assert {r.status for r in rows() if r is not feishu} == {NotificationStatus.SENT}


def test_the_dispatcher_paces_a_robot_to_twenty_a_minute(app, world, stubs):
    robot_rows(world["agency"], 25)
    drain(app)
    wecom = [r for r in rows() if r.channel is Channel.WECOM_ROBOT]
    assert [r.status for r in wecom].count(NotificationStatus.SENT) == 20
    waiting = [r for r in wecom if r.status is NotificationStatus.PENDING]
    assert len(waiting) == 5
    assert all(
        r.attempts == 0 and r.next_attempt_at > utcnow() + timedelta(seconds=50) for r in waiting
    )
    assert len(stubs.wecom.robot_messages[stubs.wecom_robot_key]) == 20
    assert 130101 not in stubs.dingtalk.refused


@pytest.fixture
def unpaced(app):  # type: ignore[no-untyped-def]
    """Take the dispatcher's pacing off so the platforms' own limits are hit."""
    from bots.channels import Pace

    registry = app.extensions["bk_chat"]
    for name in ("wecom_robot", "dingtalk_robot"):
        registry.get(name).paces = (Pace(1000, 60.0),)


def test_throttling_codes_make_the_destination_back_off_without_using_attempts(
    app, world, stubs, unpaced
):
    robot_rows(world["agency"], 22)
    dispatch_once(app)
    wecom = [r for r in rows() if r.channel is Channel.WECOM_ROBOT]
    ding = [r for r in rows() if r.channel is Channel.DINGTALK_ROBOT]
    assert [r.status for r in wecom].count(NotificationStatus.SENT) == 20
    held = [r for r in wecom if r.status is NotificationStatus.PENDING]
    assert len(held) == 2 and all(r.attempts == 0 for r in held)
    assert any("45009" in (r.last_error or "") for r in held)
    assert all(r.next_attempt_at > utcnow() + timedelta(seconds=55) for r in held)
    # DingTalk bans for ten minutes: its rows wait that long.
    ding_held = [r for r in ding if r.status is NotificationStatus.PENDING]
    assert ding_held and all(r.next_attempt_at > utcnow() + timedelta(minutes=9) for r in ding_held)
    assert stubs.dingtalk.refused.count(130101) == 1  # it stopped asking after the first no


def test_feishu_five_a_second_is_kept(app, world, stubs):
    robot_rows(world["agency"], 7)
    drain(app)
    feishu = [r for r in rows() if r.channel is Channel.FEISHU_ROBOT]
    assert [r.status for r in feishu].count(NotificationStatus.SENT) == 5
    time.sleep(1.1)
    drain(app)
    assert {r.status for r in rows() if r.channel is Channel.FEISHU_ROBOT} == {
        NotificationStatus.SENT
    }
    assert 11232 not in stubs.feishu.refused


def test_two_dispatchers_at_once_send_each_message_once(app, world, stubs):
    robot_rows(world["agency"], 5)  # Feishu takes five a second
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                dispatch_once(app)
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    drain(app)
    assert len(stubs.wecom.robot_messages[stubs.wecom_robot_key]) == 5
    assert len(stubs.dingtalk.messages[stubs.ding_robot[0]]) == 5
    assert len(stubs.feishu.messages[stubs.feishu_robot[0]]) == 5
    assert {r.attempts for r in rows()} == {1}


def test_an_abandoned_claim_is_retried_after_its_lease(app, world, stubs):
    robot_rows(world["agency"], 1)
    with transaction():
        for row in db.session.scalars(select(Notification)):
            row.status, row.attempts = NotificationStatus.SENDING, 1
            row.next_attempt_at = utcnow() - timedelta(seconds=1)  # the lease ran out
    drain(app)
    assert {r.status for r in rows()} == {NotificationStatus.SENT}
    assert {r.attempts for r in rows()} == {2}


def test_wecom_app_messages_are_paced_per_member_so_none_is_dropped(app, client, world, stubs):
    from bots.channels import Pace

    app.extensions["bk_chat"].get("wecom_app").paces = (Pace(3, 60.0),)
    stubs.wecom._member_limit.limit = 3
    with transaction():
        inspector = db.session.merge(world["inspector"])
        for n in range(5):
            outbox.notify_user(inspector, "notice.responded", f"t{n}", {"notice_id": n})
    drain(app)
    assert len(stubs.wecom.app_messages) == 3
    assert stubs.wecom.dropped == []
    assert [r.status for r in rows()].count(NotificationStatus.PENDING) == 2


def test_a_long_message_is_cut_to_the_robots_size_limit(app, world, stubs):
    with transaction():
        outbox.notify_agency_groups(
            world["agency"],
            "notice.returned",
            "long",
            {"notice_id": 1, "number": "测试〔2026〕1号", "reason": "照片不清楚。" * 2000},
        )
    drain(app)
    assert {r.status for r in rows()} == {NotificationStatus.SENT}
    [wecom] = stubs.wecom.robot_messages[stubs.wecom_robot_key]
    assert len(wecom["markdown"]["content"].encode()) <= 4096
    assert wecom["markdown"]["content"].endswith("…")


def test_robot_secrets_come_from_one_json_setting_and_bad_json_is_refused():
    from config import ConfigError, TestingConfig

    with pytest.raises(ConfigError, match="CHAT_ROBOTS") as refused:
        TestingConfig.from_env({"CHAT_ROBOTS": '{"x": {"channel": "wecom_robot", "key": "s3cr'})
    assert "s3cr" not in str(refused.value)
    assert "s3cr" not in repr(TestingConfig(CHAT_ROBOTS='{"x": {"key": "s3cr"}}'))


def test_flask_bk_outbox_delivers_what_is_due(app, client, runner, world, stubs):
    issued_notice(client, world)
    result = runner.invoke(args=["bk", "outbox"])
    assert result.exit_code == 0, result.output
    assert "已发送 4 条" in result.output


def test_worker_processes_share_one_access_token_through_redis(app, world, stubs):
    """Every new access token retires the one before: with Redis configured, two workers (two
    registries, as two processes build them) fetch one token between them, not one each."""
    import redis

    from bots.channels import Message, Recipient, build

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(url)
    for key in store.scan_iter("bk:wechatpy:*"):
        store.delete(key)
    settings = {**app.config, "REDIS_URL": url}
    openid = world["operator"].wechat_openid
    stubs.wechat.user_wrote(openid)
    registries = [build(settings), build(settings)]
    try:
        for registry in registries:
            registry.get("wechat_mp").send(
                Recipient(openid, utcnow()), Message("整改通知", ("请于三日内整改",))
            )
        assert len(stubs.wechat.calls_to("/cgi-bin/token")) == 1
        assert len(stubs.wechat.custom_messages) == 2
        # The other channel builds its own key space, so nothing here crossed accounts.
        assert any(k.startswith(b"bk:wechatpy:") for k in store.scan_iter("bk:wechatpy:*"))
    finally:
        for registry in registries:
            registry.close()
        for key in store.scan_iter("bk:wechatpy:*"):
            store.delete(key)
