"""Writing outbox rows: every message to send is recorded in the transaction of the change it
reports, and the dispatcher (bots/) delivers it later, retrying until it is sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Agency, Channel, Notification, Role, User

# Agency group chats: `Agency.chat_destinations` maps a channel to a destination name, e.g.
# {"wecom_robot": "meilan-market", "dingtalk_robot": "meilan-market"}.
ROBOT_CHANNELS = (Channel.WECOM_ROBOT, Channel.DINGTALK_ROBOT, Channel.FEISHU_ROBOT)

# A parent who uses only the mini-program (a wxa_openid, no official-account openid) can be told
# of these by a subscription message (订阅消息): each one-time grant they give in the mini-program
# lets exactly one message through, so it is spent on what the concern became, not on the
# "submitted" receipt they already saw on screen.
SUBSCRIPTION_EVENTS = frozenset({"concern.accepted", "concern.dismissed", "concern.resolved"})
# The adapter (bots/channels/wxa_subscribe.py) that sends them. Their outbox rows are WeChat
# rows (`Channel.WECHAT_MP`): a new channel value would need a schema migration, and WeChat it
# is — if the parent follows the official account meanwhile, the row goes there instead.
WXA_SUBSCRIBE = "wxa_subscribe"


def channel_for(user: User, event: str | None = None) -> Channel | None:
    """How a person is reached in chat: WeCom when bound there, else the official account, else
    (for a concern's outcome, `SUBSCRIPTION_EVENTS`) the mini-program's subscription message."""
    if user.wecom_userid:
        return Channel.WECOM_APP
    if user.wechat_openid:
        return Channel.WECHAT_MP
    if user.wxa_openid and event in SUBSCRIPTION_EVENTS:
        return Channel.WECHAT_MP
    return None


def notify_user(user: User, event: str, key: str, payload: dict[str, Any]) -> Notification | None:
    channel = channel_for(user, event)
    if channel is None or not user.is_active:
        return None
    return _add(
        Notification(
            idempotency_key=f"{key}:{channel.value}:u{user.id}",
            channel=channel,
            recipient_id=user.id,
            event=event,
            payload=payload,
        )
    )


def notify_agency_groups(
    agency: Agency, event: str, key: str, payload: dict[str, Any]
) -> list[Notification]:
    rows = []
    for channel in ROBOT_CHANNELS:
        destination = (agency.chat_destinations or {}).get(channel.value)
        if destination:
            row = _add(
                Notification(
                    idempotency_key=f"{key}:{channel.value}:{destination}",
                    channel=channel,
                    destination=destination,
                    event=event,
                    payload=payload,
                )
            )
            if row is not None:
                rows.append(row)
    return rows


def operators_of(centre_id: int) -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(
                User.role == Role.OPERATOR, User.centre_id == centre_id, User.is_active.is_(True)
            )
        )
    )


def supervisors_of(agency_id: int) -> list[User]:
    """The agency's supervisors (inspectors flagged `is_supervisor`), active ones only."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.role == Role.INSPECTOR,
                User.agency_id == agency_id,
                User.is_supervisor.is_(True),
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def _add(row: Notification) -> Notification | None:
    """Add unless a row with the same idempotency key is already there."""
    exists = db.session.scalar(
        select(Notification.id).where(Notification.idempotency_key == row.idempotency_key)
    )
    if exists is not None:
        return None
    db.session.add(row)
    return row
