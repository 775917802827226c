"""The regulators' group robots go down for minutes and come back: every message written before,
during and after the outage reaches its robot, and none twice.

Many agencies, each with a WeCom, a DingTalk and a Feishu robot on the platform stubs (which
enforce each platform's signature and rate rules, DingTalk's ban included). Two dispatchers
deliver side by side, as two worker processes would, while the clocks keep writing group
messages. All three platforms go down together, each its own way — WeCom answers 503, DingTalk
refuses connections, Feishu answers 503 — for `OUTAGE_S`, then come back.

CI runs a short outage with the backoff scaled down; `BK_RELIABILITY_FULL=1` runs three minutes
at the production backoff (10 s doubling).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Agency, Notification, NotificationStatus
from app.services import outbox
from app.services.base import transaction
from bots.dispatcher import dispatch_once
from tests import factories as f
from tests.bots_support import chat_config
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.reliability_support import full_run

stubs, close_channels = _stubs, _close_channels
pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("close_channels")]

AGENCIES = 12 if full_run() else 5
OUTAGE_S = 180.0 if full_run() else 12.0
BACKOFF_BASE_S = 10.0 if full_run() else 1.0
# Per robot: before the outage, during it, right after. DingTalk and WeCom robots take 20 a
# minute, so one robot's messages fit in a minute's allowance.
BEFORE, DURING, AFTER = 3, 6, 3
NUMBER_RE = re.compile(r"RB(\d+)-(\d+)号")


@pytest.fixture
def robots(stubs):
    """Three robots per agency on the stubs, named the way CHAT_ROBOTS names them."""
    config: dict[str, dict[str, str]] = {}
    for n in range(AGENCIES):
        config[f"a{n}-wecom"] = {"channel": "wecom_robot", "key": stubs.wecom.add_robot()}
        token, secret = stubs.dingtalk.add_robot()
        config[f"a{n}-ding"] = {
            "channel": "dingtalk_robot",
            "access_token": token,
            "secret": secret,
        }
        token, secret = stubs.feishu.add_robot()
        config[f"a{n}-feishu"] = {"channel": "feishu_robot", "token": token, "secret": secret}
    return config


@pytest.fixture
def app_config(app_config, stubs, robots):
    return chat_config(
        app_config,
        stubs,
        CHAT_ROBOTS=json.dumps(robots),
        OUTBOX_BACKOFF_BASE_S=BACKOFF_BASE_S,
        OUTBOX_BACKOFF_CAP_S=1800.0,
        OUTBOX_MAX_ATTEMPTS=16,
        CHAT_HTTP_TIMEOUT_S=2.0,
    )


def _agencies() -> list[int]:
    ids = []
    for n in range(AGENCIES):
        district = f.district(f"测试{n}区")
        agency = f.agency(district, prefix=f"测{n}市监整")
        agency.chat_destinations = {
            "wecom_robot": f"a{n}-wecom",
            "dingtalk_robot": f"a{n}-ding",
            "feishu_robot": f"a{n}-feishu",
        }
        ids.append(agency.id)
    db.session.commit()
    return ids


def _write(agency_ids: list[int], start: int, count: int) -> None:
    """`count` group messages per agency, as the legal clocks write them."""
    for seq in range(start, start + count):
        with transaction():
            for agency_id in agency_ids:
                outbox.notify_agency_groups(
                    db.session.get(Agency, agency_id),
                    "notice.overdue",
                    f"outage:{seq}",
                    {"notice_id": seq, "number": f"RB{agency_id}-{seq}号"},
                )


def _received(stubs) -> Counter:
    seen: Counter = Counter()
    for platform, per_robot in zip(("wecom", "ding", "feishu"), _by_platform(stubs), strict=True):
        for messages in per_robot:
            for message in messages:
                for agency, seq in NUMBER_RE.findall(json.dumps(message, ensure_ascii=False)):
                    seen[(platform, int(agency), int(seq))] += 1
    return seen


def _by_platform(stubs):
    return (
        stubs.wecom.robot_messages.values(),
        stubs.dingtalk.messages.values(),
        stubs.feishu.messages.values(),
    )


def test_robots_down_for_minutes_get_every_message_once_when_back(app, stubs):
    agency_ids = _agencies()
    stop = threading.Event()
    errors: list[BaseException] = []

    def dispatcher() -> None:
        while not stop.is_set():
            try:
                with app.app_context():
                    busy = dispatch_once(app).busy
                    db.session.remove()
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return
            if not busy:
                stop.wait(0.2)

    workers = [threading.Thread(target=dispatcher, name=f"dispatcher-{n}") for n in range(2)]
    for worker in workers:
        worker.start()
    try:
        _write(agency_ids, 0, BEFORE)
        down_at = time.monotonic()
        stubs.wecom.go_down("5xx")
        stubs.dingtalk.go_down("refused")
        stubs.feishu.go_down("5xx")
        # Messages keep coming while the platforms are away, spread over the outage.
        for step in range(DURING):
            time.sleep(OUTAGE_S / (DURING + 1))
            _write(agency_ids, BEFORE + step, 1)
        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        with app.app_context():
            failing = db.session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.status == NotificationStatus.PENDING, Notification.attempts > 0
                )
            )
            db.session.remove()
        stubs.wecom.come_back()
        stubs.dingtalk.come_back()
        stubs.feishu.come_back()
        back_at = time.monotonic()
        _write(agency_ids, BEFORE + DURING, AFTER)

        total = AGENCIES * 3 * (BEFORE + DURING + AFTER)
        deadline = back_at + 120 + 6 * BACKOFF_BASE_S
        delivered_at = None
        while time.monotonic() < deadline and not errors:
            with app.app_context():
                sent = db.session.scalar(
                    select(func.count(Notification.id)).where(
                        Notification.status == NotificationStatus.SENT
                    )
                )
                db.session.remove()
            if sent == total:
                delivered_at = time.monotonic()
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert errors == []

    statuses = Counter(r.status for r in db.session.scalars(select(Notification)))
    assert statuses == {NotificationStatus.SENT: total}, statuses
    assert failing > 0  # the outage really made deliveries fail
    received = _received(stubs)
    expected = {
        (platform, agency, seq)
        for platform in ("wecom", "ding", "feishu")
        for agency in agency_ids
        for seq in range(BEFORE + DURING + AFTER)
    }
    assert set(received) == expected
    twice = {key: n for key, n in received.items() if n > 1}
    assert not twice, f"delivered more than once: {twice}"
    print(
        f"\n== robots down {OUTAGE_S:g} s ({'full' if full_run() else 'quick'} run): "
        f"{AGENCIES * 3} robots, {total} messages, {failing} waiting on a retry at the end of "
        f"the outage; all delivered once, {delivered_at - back_at:.1f} s after the platforms "
        "came back =="
    )
