"""Delivering the outbox: which rows are due, claiming them, and recording what happened.

The dispatcher (bots/dispatcher.py) drives these; each call is one short transaction.

Delivery rule: a row is sent at least once and, barring a crash, exactly once. A claim moves it
`pending → sending` (attempts + 1, a lease in `next_attempt_at`) in one statement that only one
claimer can win: `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional UPDATE on
SQLite (whose write transactions are serialised). Results are recorded only by the claim that
holds it (`status = sending AND attempts = n`). A worker that dies after the platform took the
message but before recording it leaves a `sending` row whose lease expires; it is then sent again —
so a crash can repeat a send at most once, and nothing else can. A slow platform cannot: the
worker renews its claims as it goes (`renew`) and sends only rows it still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from app.extensions import db
from app.models import (
    Centre,
    Channel,
    InboundMessage,
    Notification,
    NotificationStatus,
    User,
    utcnow,
)
from app.services.base import transaction
from app.services.outbox import SUBSCRIPTION_EVENTS, WXA_SUBSCRIBE

P = NotificationStatus


@dataclass(frozen=True)
class DueRow:
    id: int
    channel: str
    destination: str | None
    recipient_id: int | None

    @property
    def pace_key(self) -> tuple[str, str]:
        target = self.destination if self.destination else f"u{self.recipient_id}"
        return (self.channel, target)


@dataclass(frozen=True)
class Claimed:
    """A row this worker now holds, with what the adapter and the renderer need."""

    id: int
    attempt: int
    channel: str
    event: str
    payload: dict[str, Any]
    address: str | None  # openid, WeCom userid or robot destination; None if unreachable
    is_person: bool
    last_inbound_at: datetime | None
    centre_name: str | None
    target: str  # the pacing key's second half: destination name or "u<recipient id>"
    role: str | None = None  # the recipient's role (links are built for it); None for a group
    # The registered adapter that sends it: the row's channel, except a WeChat row for someone
    # who uses only the mini-program (see app/services/outbox.py), sent as a subscription
    # message by the mini-program's adapter.
    adapter: str = ""

    def __post_init__(self) -> None:
        if not self.adapter:
            object.__setattr__(self, "adapter", self.channel)


def _target(channel: str, target: str) -> Any:
    column = (
        Notification.recipient_id == int(target[1:])
        if target.startswith("u") and target[1:].isdigit()
        else Notification.destination == target
    )
    return and_(Notification.channel == Channel(channel), column)


def reclaim_abandoned(now: datetime | None = None) -> int:
    """Rows whose claim's lease ran out (the worker died): back to pending."""
    now = now or utcnow()
    with transaction():
        result = db.session.execute(
            update(Notification)
            .where(Notification.status == P.SENDING, Notification.next_attempt_at < now)
            .values(status=P.PENDING, last_error="claim abandoned (worker stopped)")
        )
    return result.rowcount or 0


def due(limit: int, now: datetime | None = None) -> list[DueRow]:
    now = now or utcnow()
    rows = db.session.execute(
        select(
            Notification.id,
            Notification.channel,
            Notification.destination,
            Notification.recipient_id,
        )
        .where(Notification.status == P.PENDING, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    ).all()
    db.session.rollback()  # end the read; claims are their own transactions
    return [DueRow(r.id, r.channel.value, r.destination, r.recipient_id) for r in rows]


def recent_sends(pace_key: tuple[str, str], since: datetime) -> list[datetime]:
    """When messages to this destination went out since `since` (in flight counts as now)."""
    now = utcnow()
    rows = db.session.execute(
        select(Notification.status, Notification.sent_at).where(
            _target(*pace_key),
            or_(
                and_(Notification.status == P.SENT, Notification.sent_at >= since),
                Notification.status == P.SENDING,
            ),
        )
    ).all()
    db.session.rollback()
    return sorted(now if r.status is P.SENDING else r.sent_at for r in rows)


def defer(ids: list[int], until: datetime) -> None:
    """Not yet (pacing): later, without counting an attempt."""
    if not ids:
        return
    with transaction():
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == P.PENDING)
            .values(next_attempt_at=until)
        )


def defer_destination(pace_key: tuple[str, str], until: datetime) -> None:
    """The platform throttled this destination: hold all its pending rows until `until`."""
    with transaction():
        db.session.execute(
            update(Notification)
            .where(
                _target(*pace_key),
                Notification.status == P.PENDING,
                Notification.next_attempt_at < until,
            )
            .values(next_attempt_at=until)
        )


def hasten_destination(pace_key: tuple[str, str], now: datetime | None = None) -> int:
    """A send to this destination just went through: the rows still waiting out a failure's
    backoff for it are due now, so a platform that was down gets its backlog as soon as it is
    back (still paced) rather than each row at the end of its own, ever longer, backoff."""
    now = now or utcnow()
    with transaction():
        result = db.session.execute(
            update(Notification)
            .where(
                _target(*pace_key),
                Notification.status == P.PENDING,
                Notification.attempts > 0,
                Notification.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
    return result.rowcount or 0


def claim(ids: list[int], lease_s: float, now: datetime | None = None) -> list[Claimed]:
    """Take the rows that are still pending and due; another worker's rows are skipped."""
    if not ids:
        return []
    now = now or utcnow()
    lease_until = now + timedelta(seconds=lease_s)
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            takeable = (
                select(Notification.id)
                .where(
                    Notification.id.in_(ids),
                    Notification.status == P.PENDING,
                    Notification.next_attempt_at <= now,
                )
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            condition = Notification.id.in_(takeable)
        else:
            condition = and_(
                Notification.id.in_(ids),
                Notification.status == P.PENDING,
                Notification.next_attempt_at <= now,
            )
        taken = session.execute(
            update(Notification)
            .where(condition)
            .values(
                status=P.SENDING,
                attempts=Notification.attempts + 1,
                next_attempt_at=lease_until,
            )
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        taken_ids = sorted(taken)
        rows = list(
            session.scalars(
                select(Notification).where(Notification.id.in_(taken_ids)).order_by(Notification.id)
            )
        )
        claimed = [_describe(row) for row in rows]
    return claimed


def renew(claims: list[tuple[int, int]], lease_s: float, now: datetime | None = None) -> set[int]:
    """Extend the lease of rows this worker still holds (`(id, attempt)` of its claims), before
    it sends the next of them; returns the ids it still holds. A row whose lease ran out and
    that another worker took back (`reclaim_abandoned`) is not among them and must not be sent:
    the other worker sends it."""
    if not claims:
        return set()
    until = (now or utcnow()) + timedelta(seconds=lease_s)
    with transaction() as session:
        taken = session.execute(
            update(Notification)
            .where(
                Notification.status == P.SENDING,
                or_(*(and_(Notification.id == i, Notification.attempts == a) for i, a in claims)),
            )
            .values(next_attempt_at=until)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        return set(taken)


def _describe(row: Notification) -> Claimed:
    address: str | None = row.destination
    last_inbound_at = None
    role = None
    adapter = row.channel.value
    if row.recipient_id is not None:
        user = db.session.get(User, row.recipient_id)
        if user is not None and user.is_active:
            role = user.role.value
            if row.channel is Channel.WECOM_APP:
                address = user.wecom_userid
            elif row.channel is Channel.WECHAT_MP:
                address = user.wechat_openid
                if address is None and user.wxa_openid and row.event in SUBSCRIPTION_EVENTS:
                    address, adapter = user.wxa_openid, WXA_SUBSCRIBE
        if adapter == Channel.WECHAT_MP.value and address:
            last_inbound_at = last_inbound(Channel.WECHAT_MP, address)
    centre_name = None
    centre_id = (row.payload or {}).get("centre_id")
    if centre_id is not None:
        centre_name = db.session.scalar(select(Centre.name).where(Centre.id == centre_id))
    return Claimed(
        id=row.id,
        attempt=row.attempts,
        channel=row.channel.value,
        event=row.event,
        payload=dict(row.payload or {}),
        address=address,
        is_person=row.recipient_id is not None,
        last_inbound_at=last_inbound_at,
        centre_name=centre_name,
        target=row.destination or f"u{row.recipient_id}",
        role=role,
        adapter=adapter,
    )


def last_inbound(channel: Channel, sender: str) -> datetime | None:
    """When the person last wrote to us on this channel (the official account's 48 h window)."""
    return db.session.scalar(
        select(func.max(InboundMessage.received_at)).where(
            InboundMessage.channel == channel, InboundMessage.sender == sender
        )
    )


def _held(row_id: int, attempt: int) -> Any:
    return and_(
        Notification.id == row_id,
        Notification.status == P.SENDING,
        Notification.attempts == attempt,
    )


def mark_sent(row_id: int, attempt: int) -> bool:
    with transaction():
        result = db.session.execute(
            update(Notification)
            .where(_held(row_id, attempt))
            .values(status=P.SENT, sent_at=utcnow(), last_error=None)
        )
    return bool(result.rowcount)


def mark_failed_attempt(
    row_id: int, attempt: int, error: str, retry_in: float | None, max_attempts: int
) -> NotificationStatus:
    """A failed attempt: retried after `retry_in` seconds, or `failed` for good when the error
    is permanent (`retry_in` None) or the attempts are used up."""
    final = retry_in is None or attempt >= max_attempts
    status = P.FAILED if final else P.PENDING
    values: dict[str, Any] = {"status": status, "last_error": error[:2000]}
    if not final:
        values["next_attempt_at"] = utcnow() + timedelta(seconds=retry_in or 0)
    with transaction():
        db.session.execute(update(Notification).where(_held(row_id, attempt)).values(**values))
    return status


def mark_throttled(row_id: int, attempt: int, error: str, until: datetime) -> None:
    """The platform said "too fast": not the message's fault, so the attempt is given back."""
    with transaction():
        db.session.execute(
            update(Notification)
            .where(_held(row_id, attempt))
            .values(
                status=P.PENDING,
                attempts=attempt - 1,
                next_attempt_at=until,
                last_error=error[:2000],
            )
        )


def release(row_id: int, attempt: int) -> None:
    """Hand a claimed row back untouched (pacing decided it must wait)."""
    with transaction():
        db.session.execute(
            update(Notification)
            .where(_held(row_id, attempt))
            .values(status=P.PENDING, attempts=attempt - 1, next_attempt_at=utcnow())
        )
