"""The outbox dispatcher delivers what the services wrote: to the operator on the official
account, the inspector on WeCom and the agency's three group robots — signed, paced, retried,
never twice."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Channel, Notification, NotificationStatus, utcnow
from app.services import outbox
from app.services.base import transaction
from bots.dispatcher import dispatch_once, drain
from tests import factories as f
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
    dispatch_once(app)  # one pass
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


# A reason pasted long: about 48 KB of Chinese, more than any platform takes in one message.
LONG_REASON = "照片不清楚，请补拍桶盖和地面的照片。\n" * 1000


def long_notice(**extra) -> dict:  # type: ignore[no-untyped-def]
    return {"notice_id": 1, "number": "测试〔2026〕1号", "reason": LONG_REASON, **extra}


def robot_request(stub, path: str) -> dict:  # type: ignore[no-untyped-def]
    [request] = [r for r in stub.received if r["path"].startswith(path)]
    return request


def test_a_long_message_is_cut_to_fit_each_robot_and_keeps_its_link(app, world, stubs):
    with transaction():
        outbox.notify_agency_groups(world["agency"], "notice.returned", "long", long_notice())
    drain(app)
    assert {r.status for r in rows()} == {NotificationStatus.SENT}
    link = "https://mcll.example.cn/#/inspector/notice/1"
    # WeCom: markdown content at most 4096 bytes (40058 past that).
    [wecom] = stubs.wecom.robot_messages[stubs.wecom_robot_key]
    content = wecom["markdown"]["content"]
    assert 4000 < len(content.encode()) <= 4096
    assert "…" in content and content.endswith(f"[查看详情]({link})")
    # DingTalk: the whole request at most 20,000 bytes (460101 past that).
    ding = robot_request(stubs.dingtalk, "/robot/send")
    assert 19_000 < ding["size"] <= 20_000
    assert ding["json"]["markdown"]["text"].endswith(f"[查看详情]({link})")
    # Feishu: the whole request at most 20 KB.
    feishu = robot_request(stubs.feishu, "/open-apis/bot/v2/hook/")
    assert 19_000 < feishu["size"] <= 20_000
    assert feishu["json"]["content"]["text"].endswith(f"详情：{link}")
    assert stubs.dingtalk.refused == [] and stubs.feishu.refused == []


def test_the_robot_stubs_refuse_what_the_platforms_refuse(app, world, stubs, monkeypatch):
    """Uncut, the message above is refused: the size tests can fail."""
    from bots.channels import Message, Recipient, SendError, dingtalk, feishu

    monkeypatch.setattr(dingtalk, "BODY_MAX_BYTES", 10**6)
    monkeypatch.setattr(feishu, "BODY_MAX_BYTES", 10**6)
    registry = app.extensions["bk_chat"]
    message = Message("【整改回复被退回】", (f"退回理由：{LONG_REASON}",))
    for channel, destination, code in (
        ("dingtalk_robot", "meilan-ding", 460101),
        ("feishu_robot", "meilan-feishu", 19036),
    ):
        with pytest.raises(SendError) as refused:
            registry.get(channel).send(Recipient(destination), message)
        assert refused.value.code == code and refused.value.permanent


def test_a_long_customer_service_message_fits_and_keeps_the_commands(app, client, world, stubs):
    openid = world["operator"].wechat_openid
    stubs.wechat.user_wrote(openid)
    post(client, "/wechat/callback", wechat_plain(text_xml(openid, "通知")))
    with transaction():
        operator = db.session.merge(world["operator"])
        outbox.notify_user(operator, "notice.returned", "long", long_notice())
    drain(app)
    [message] = stubs.wechat.custom_messages
    text = message["text"]["content"]
    assert 2000 < len(text.encode()) <= 2048
    assert "…" in text
    assert "请重新整改后回复“整改 1 整改说明”" in text  # the command survives the cut
    assert text.endswith("详情：https://mcll.example.cn/#/operator/notice/1")
    assert rows()[0].status is NotificationStatus.SENT


def test_a_long_app_message_is_cut_by_us_not_by_wecom(app, world, stubs):
    with transaction():
        inspector = db.session.merge(world["inspector"])
        outbox.notify_user(inspector, "notice.responded", "long", long_notice())
    drain(app)
    [message] = stubs.wecom.app_messages
    text = message["text"]["content"]
    assert len(text.encode()) <= 2048 and "…" in text
    assert "请复查后回复“通过 1”或“退回 1 理由”。" in text
    assert stubs.wecom.truncated == []  # WeCom would have cut the end off, link and all


def test_the_wechat_stubs_enforce_the_text_limits(app, world, stubs, monkeypatch):
    from bots.channels import Message, Recipient, SendError, wechat_mp, wecom_app

    monkeypatch.setattr(wechat_mp, "CUSTOM_TEXT_MAX_BYTES", 10**6)
    monkeypatch.setattr(wecom_app, "TEXT_MAX_BYTES", 10**6)
    registry = app.extensions["bk_chat"]
    message = Message("【整改回复被退回】", (LONG_REASON,))
    openid = world["operator"].wechat_openid
    stubs.wechat.user_wrote(openid)
    with pytest.raises(SendError) as refused:
        # The window is open on our side too, so a customer-service message is tried.
        registry.get("wechat_mp").send(Recipient(openid, utcnow()), message)
    assert refused.value.code == 45002
    registry.get("wecom_app").send(Recipient("wang.jianguan"), message)
    [cut] = stubs.wecom.truncated
    assert len(cut["text"]["content"].encode()) <= 2048


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


# --- the platforms say "too fast" -------------------------------------------------------------


def _held_back(channel: Channel, seconds: float) -> list[Notification]:
    """The channel's rows, each checked to be waiting at least `seconds` with no attempt used."""
    held = [r for r in rows() if r.channel is channel]
    assert held
    for row in held:
        assert row.status is NotificationStatus.PENDING
        assert row.attempts == 0
        assert row.next_attempt_at > utcnow() + timedelta(seconds=seconds)
    return held


def _retry_now(channel: Channel) -> None:
    with transaction():
        for row in db.session.scalars(select(Notification).where(Notification.channel == channel)):
            row.next_attempt_at = utcnow()


def test_feishu_11232_makes_the_robot_back_off_without_using_attempts(app, world, stubs):
    stubs.feishu.throttled = True
    robot_rows(world["agency"], 2)
    report = dispatch_once(app)
    held = _held_back(Channel.FEISHU_ROBOT, 8)
    assert "11232" in (held[0].last_error or "")
    assert stubs.feishu.refused == [11232]  # it stopped asking after the first no
    assert len(report.throttled) == 1 and len(report.deferred) == 1
    # The other robots were not held up.
    assert len(stubs.wecom.robot_messages[stubs.wecom_robot_key]) == 2

    stubs.feishu.throttled = False
    _retry_now(Channel.FEISHU_ROBOT)
    drain(app)
    assert {(r.status, r.attempts) for r in rows()} == {(NotificationStatus.SENT, 1)}
    assert len(stubs.feishu.messages[stubs.feishu_robot[0]]) == 2


def test_wechat_45009_makes_the_person_wait_for_the_quota_without_using_attempts(app, world, stubs):
    stubs.wechat.throttled = True
    with transaction():
        operator = db.session.merge(world["operator"])
        for n in range(2):
            outbox.notify_user(operator, "notice.overdue", f"t{n}", {"notice_id": n})
    dispatch_once(app)
    held = _held_back(Channel.WECHAT_MP, 55)
    assert "45009" in (held[0].last_error or "")
    assert len(stubs.wechat.calls_to("/cgi-bin/message/template/send")) == 1
    # The quota is the day's: the wait ends by the next midnight in China, not later.
    assert all(r.next_attempt_at < utcnow() + timedelta(hours=24, minutes=1) for r in held)

    stubs.wechat.throttled = False
    _retry_now(Channel.WECHAT_MP)
    drain(app)
    assert {(r.status, r.attempts) for r in rows()} == {(NotificationStatus.SENT, 1)}
    assert len(stubs.wechat.template_messages) == 2


def test_wecom_45009_makes_the_member_back_off_without_using_attempts(app, world, stubs):
    stubs.wecom.throttled = True
    with transaction():
        inspector = db.session.merge(world["inspector"])
        for n in range(2):
            outbox.notify_user(inspector, "notice.responded", f"t{n}", {"notice_id": n})
    dispatch_once(app)
    held = _held_back(Channel.WECOM_APP, 55)
    assert "45009" in (held[0].last_error or "")
    assert stubs.wecom.app_messages == []

    stubs.wecom.throttled = False
    _retry_now(Channel.WECOM_APP)
    drain(app)
    assert {(r.status, r.attempts) for r in rows()} == {(NotificationStatus.SENT, 1)}
    assert len(stubs.wecom.app_messages) == 2


# --- the documented rates, as configured (no override) ------------------------------------


def test_the_default_paces_are_the_platforms_documented_limits(app):
    from bots.channels import Pace

    assert not app.config.get("CHAT_PACES")  # nothing overrides them here
    registry = app.extensions["bk_chat"]
    assert registry.get("feishu_robot").paces == (Pace(5, 1.0), Pace(100, 60.0))
    assert registry.get("wecom_app").paces == (Pace(30, 60.0),)
    assert registry.get("wecom_robot").paces == (Pace(20, 60.0),)
    assert registry.get("dingtalk_robot").paces == (Pace(20, 60.0),)


def _sent_before(count: int, span_s: float, **target) -> None:  # type: ignore[no-untyped-def]
    """`count` messages to one destination already sent in the last `span_s` seconds (none in
    the last two, so only the per-minute limit is in play)."""
    now = utcnow()
    with transaction():
        for n in range(count):
            db.session.add(
                Notification(
                    idempotency_key=f"earlier:{n}",
                    event="notice.overdue",
                    payload={"notice_id": n},
                    status=NotificationStatus.SENT,
                    attempts=1,
                    sent_at=now - timedelta(seconds=2 + (span_s - 2) * n / max(count, 1)),
                    **target,
                )
            )


@pytest.mark.parametrize(("already", "goes_now"), [(99, True), (100, False)])
def test_feishu_takes_a_hundred_a_minute_per_robot(app, world, stubs, already, goes_now):
    target = {"channel": Channel.FEISHU_ROBOT, "destination": "meilan-feishu"}
    _sent_before(already, 58, **target)
    with transaction():
        outbox.notify_agency_groups(world["agency"], "notice.overdue", "next", {"notice_id": 1})
    report = dispatch_once(app)
    [row] = [r for r in rows("notice.overdue") if r.idempotency_key.startswith("next:feishu")]
    if goes_now:
        assert row.id in report.sent and len(stubs.feishu.messages[stubs.feishu_robot[0]]) == 1
    else:
        assert row.id in report.deferred and row.attempts == 0
        assert stubs.feishu.messages[stubs.feishu_robot[0]] == []
        # It waits for the oldest of the hundred to leave the minute (sent 58 s ago).
        assert utcnow() < row.next_attempt_at < utcnow() + timedelta(seconds=3)


@pytest.mark.parametrize(("already", "goes_now"), [(29, True), (30, False)])
def test_wecom_app_takes_thirty_a_minute_per_member(app, world, stubs, already, goes_now):
    colleague = f.inspector_of(world["agency"])
    colleague.wecom_userid = "zhao.jianguan"
    db.session.commit()
    stubs.wecom.members.add("zhao.jianguan")
    _sent_before(already, 58, channel=Channel.WECOM_APP, recipient_id=world["inspector"].id)
    with transaction():
        for user in (db.session.merge(world["inspector"]), db.session.merge(colleague)):
            outbox.notify_user(user, "notice.responded", "next", {"notice_id": 1})
    dispatch_once(app)
    delivered = {m["to"] for m in stubs.wecom.app_messages}
    # The limit is per member: the colleague is never held back by wang's thirty.
    assert delivered == ({"wang.jianguan", "zhao.jianguan"} if goes_now else {"zhao.jianguan"})
    assert stubs.wecom.dropped == []


# --- a pass slower than the lease -------------------------------------------------------------


def test_a_pass_slower_than_the_lease_keeps_its_claims_so_nothing_is_sent_twice(app, world, stubs):
    """Each Feishu answer takes 0.6 s and the lease is 1 s: sending four rows takes 2.4 s. A
    second worker polling meanwhile must find every row still held, not abandoned."""
    app.config["OUTBOX_LEASE_S"] = 1.0
    stubs.feishu.slow_down(0.6)
    robot_rows(world["agency"], 4)
    with transaction():  # only the slow robot's rows
        for row in db.session.scalars(
            select(Notification).where(Notification.channel != Channel.FEISHU_ROBOT)
        ):
            row.status = NotificationStatus.SENT
    first = threading.Thread(target=lambda: _pass_in_thread(app))
    first.start()
    second_reports = []
    while first.is_alive():
        time.sleep(0.3)
        with app.app_context():
            second_reports.append(dispatch_once(app))
            db.session.remove()
    first.join()
    assert not any(r.sent or r.retrying for r in second_reports)
    feishu = [r for r in rows() if r.channel is Channel.FEISHU_ROBOT]
    assert {(r.status, r.attempts) for r in feishu} == {(NotificationStatus.SENT, 1)}
    numbers = [str(m) for m in stubs.feishu.messages[stubs.feishu_robot[0]]]
    assert len(numbers) == 4 and len(set(numbers)) == 4


def _pass_in_thread(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        dispatch_once(app)
        db.session.remove()


def test_a_row_taken_back_meanwhile_is_not_sent_by_the_slow_worker(app, world, stubs):
    from app.services import delivery

    robot_rows(world["agency"], 1)
    due = [r.id for r in delivery.due(10)]
    claimed = delivery.claim(due, 60)
    # The lease ran out, and another worker took the row back and claimed it again.
    with transaction():
        db.session.execute(
            update(Notification).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert delivery.reclaim_abandoned() == len(due)
    assert [c.attempt for c in delivery.claim(due, 60)] == [2] * len(due)
    assert delivery.renew([(c.id, c.attempt) for c in claimed], 60) == set()


# --- more of who hears what ------------------------------------------------------------------


def test_an_answered_notice_reaches_the_agency_groups(app, client, world, stubs):
    notice = issued_notice(client, world)
    drain(app)
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已为垃圾桶加盖"},
        headers=world["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    drain(app)
    wecom = stubs.wecom.robot_messages[stubs.wecom_robot_key][-1]["markdown"]["content"]
    assert wecom.startswith("**【整改回复待复查】阳光小树苗托管中心**")
    assert notice["number"] in wecom
    assert f"#/inspector/notice/{notice['id']}" in wecom
    assert "通过" not in wecom  # the review commands are for the inspector, not the group
    ding = stubs.dingtalk.messages[stubs.ding_robot[0]][-1]
    assert ding["markdown"]["title"] == "【整改回复待复查】阳光小树苗托管中心"
    feishu = stubs.feishu.messages[stubs.feishu_robot[0]][-1]
    assert "【整改回复待复查】" in feishu["content"]["text"]


def test_past_the_window_s_five_messages_a_template_goes_instead(app, client, world, stubs):
    """WeChat allows five customer-service messages per 48-hour window; the sixth answers 45047
    and goes as a template message."""
    openid = world["operator"].wechat_openid
    stubs.wechat.user_wrote(openid)
    post(client, "/wechat/callback", wechat_plain(text_xml(openid, "通知")))
    with transaction():
        operator = db.session.merge(world["operator"])
        for n in range(1, 7):
            outbox.notify_user(
                operator,
                "notice.overdue",
                f"quota:{n}",
                {"notice_id": n, "number": f"测试〔2026〕{n}号", "status_label": "已逾期"},
            )
    drain(app)
    assert [m["text"]["content"].count("测试〔2026〕") for m in stubs.wechat.custom_messages] == [
        1
    ] * 5
    [template] = stubs.wechat.template_messages
    assert template["touser"] == openid
    assert template["data"]["keyword1"]["value"] == "测试〔2026〕6号"
    assert {(r.status, r.attempts) for r in rows()} == {(NotificationStatus.SENT, 1)}
    custom_calls = stubs.wechat.calls_to("/cgi-bin/message/custom/send")
    assert len(custom_calls) == 6  # the sixth was refused (45047), then the template went


def test_a_result_the_database_could_not_record_costs_that_row_only(app, world, stubs, monkeypatch):
    """The database fails while the first message's delivery is being recorded: the other
    messages of the same robot still go out and are recorded, and the first one, left in its
    claim, is sent once more when its lease runs out (the documented at-most-one repeat)."""
    from app.services import delivery

    robot_rows(world["agency"], 3)
    key = stubs.wecom_robot_key
    real_mark_sent = delivery.mark_sent
    first = next(r.id for r in rows() if r.channel is Channel.WECOM_ROBOT)
    failures = iter([True])

    def flaky_mark_sent(row_id: int, attempt: int) -> bool:
        if row_id == first and next(failures, False):
            raise OSError("database unreachable")
        return real_mark_sent(row_id, attempt)

    monkeypatch.setattr(delivery, "mark_sent", flaky_mark_sent)
    dispatch_once(app)
    wecom = [r for r in rows() if r.channel is Channel.WECOM_ROBOT]
    assert len(stubs.wecom.robot_messages[key]) == 3  # the pass went on after the failure
    assert sorted(r.status.value for r in wecom) == ["sending", "sent", "sent"]

    with transaction():  # its lease runs out
        db.session.execute(
            update(Notification)
            .where(Notification.status == NotificationStatus.SENDING)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    drain(app)
    wecom = [r for r in rows() if r.channel is Channel.WECOM_ROBOT]
    assert {r.status for r in wecom} == {NotificationStatus.SENT}
    assert len(stubs.wecom.robot_messages[key]) == 4  # one repeat, no more
