"""Chat messages received from WeChat and WeCom: stored first (one record per platform message,
however often the platform retries), who sent them, and the photos sent in chat.

Photos: a photo is downloaded as soon as it arrives (temporary media expire) and stored like an
app upload. It joins the sender's open answer — an operator's latest answer to a notice, not
yet reviewed, whose last text or photo is less than `CHAT_PHOTO_WINDOW_S` old; a parent's 反映
sent from chat within that window and not yet decided. With nothing open it is held (its record
stays unprocessed, the file stored) and joins the next answer or 反映 sent within the window; a
held photo older than that is kept on its record but joins nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select, text, update

from app.extensions import db
from app.models import (
    Attachment,
    Channel,
    Concern,
    ConcernStatus,
    InboundMessage,
    NoticeResponse,
    Role,
    User,
    utcnow,
)
from app.services import concerns, notices, uploads
from app.services.base import transaction

_INBOUND_COLUMNS = (
    "channel",
    "dedupe_key",
    "sender",
    "msg_type",
    "payload",
    "received_at",
    "processed_at",
)
# One statement for both databases (SQLite ≥ 3.35 and PostgreSQL share this syntax). Written as
# text because SQLAlchemy never caches the dialects' ON CONFLICT inserts: compiling one on every
# callback was a third of a callback's time.
_INSERT_ONCE = text(
    f"INSERT INTO inbound_messages ({', '.join(_INBOUND_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _INBOUND_COLUMNS)}) "
    "ON CONFLICT (channel, dedupe_key) DO NOTHING RETURNING id"
).bindparams(
    *(bindparam(name, type_=InboundMessage.__table__.c[name].type) for name in _INBOUND_COLUMNS)
)


@dataclass(frozen=True)
class Recorded:
    id: int
    created: bool  # False: the platform's retry (or a replay) of a message already recorded
    reply: str | None  # the answer given the first time
    processed: bool


def record_inbound(
    channel: Channel,
    dedupe_key: str,
    sender: str,
    msg_type: str,
    payload: dict[str, Any],
) -> Recorded:
    """Store a callback once: the (channel, dedupe_key) unique key turns retries into no-ops."""
    now = utcnow()
    with transaction() as session:
        new_id = session.scalar(
            _INSERT_ONCE,
            {
                "channel": channel,
                "dedupe_key": dedupe_key,
                "sender": sender,
                "msg_type": msg_type,
                "payload": payload,
                "received_at": now,
                "processed_at": None,
            },
        )
        if new_id is not None:
            return Recorded(new_id, True, None, False)
        row = session.scalar(
            select(InboundMessage).where(
                InboundMessage.channel == channel, InboundMessage.dedupe_key == dedupe_key
            )
        )
        assert row is not None
        return Recorded(
            row.id, False, (row.payload or {}).get("reply"), row.processed_at is not None
        )


def finish_inbound(inbound_id: int, reply: str | None, error: str | None = None) -> None:
    """Record the answer given, so a retry gets the same one."""
    with transaction():
        row = db.session.get(InboundMessage, inbound_id)
        if row is None:
            return
        row.payload = {**(row.payload or {}), "reply": reply}
        row.error = error
        if row.msg_type != "image":  # images stay open until they join an answer
            row.processed_at = utcnow()


def chat_user(channel: Channel, sender: str) -> User | None:
    """The active user bound to this WeChat openid or WeCom userid."""
    column = User.wecom_userid if channel is Channel.WECOM_APP else User.wechat_openid
    user = db.session.scalar(select(User).where(column == sender))
    return user if user is not None and user.is_active else None


def get_inbound(inbound_id: int) -> InboundMessage | None:
    return db.session.get(InboundMessage, inbound_id)


def inbound_ids_needing_photos(older_than_s: float) -> list[int]:
    """Image records whose download never finished (a worker stopped): to be tried again."""
    now = utcnow()
    rows = db.session.scalars(
        select(InboundMessage)
        .where(
            InboundMessage.msg_type == "image",
            InboundMessage.processed_at.is_(None),
            InboundMessage.received_at < now - timedelta(seconds=older_than_s),
            # WeChat keeps temporary media three days; older ones cannot be fetched any more.
            InboundMessage.received_at > now - timedelta(days=3),
        )
        .order_by(InboundMessage.id)
        .limit(100)
    ).all()
    ids = [r.id for r in rows if "photo" not in (r.payload or {}) and not r.error]
    db.session.rollback()
    return ids


# --- photos --------------------------------------------------------------------------------


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["CHAT_PHOTO_WINDOW_S"])


def hold_photo(inbound_id: int, data: bytes) -> dict[str, Any]:
    """Check and store a downloaded chat photo on its record; returns its stored address.

    The file is content-addressed like every upload, so attaching it later writes nothing new.
    """
    [checked] = uploads.check_photos([uploads.Photo(data, "微信照片")], 1)
    stored = uploads.store(checked, None)  # the file only; its Attachment row comes later
    photo = {"path": stored.path, "sha256": checked.sha256, "content_type": checked.content_type}
    with transaction():
        row = db.session.get(InboundMessage, inbound_id)
        if row is not None:
            row.payload = {**(row.payload or {}), "photo": photo}
            row.error = None
    return photo


def photo_failed(inbound_id: int, error: str) -> None:
    with transaction():
        row = db.session.get(InboundMessage, inbound_id)
        if row is not None:
            row.error = error[:2000]


def _read(photo: dict[str, Any]) -> uploads.Photo:
    path = Path(current_app.config["UPLOAD_ROOT"]) / photo["path"]
    return uploads.Photo(path.read_bytes(), "微信照片")


def held_photos(channel: Channel, sender: str, now: datetime | None = None) -> list[int]:
    """Ids of this sender's photos waiting for an answer (received within the window)."""
    since = (now or utcnow()) - _window()
    return list(
        db.session.scalars(
            select(InboundMessage.id)
            .where(
                InboundMessage.channel == channel,
                InboundMessage.sender == sender,
                InboundMessage.msg_type == "image",
                InboundMessage.processed_at.is_(None),
                InboundMessage.received_at >= since,
            )
            .order_by(InboundMessage.id)
        )
    )


def _consume(inbound_ids: list[int], owner_id: int, key: str = "response_id") -> None:
    with transaction():
        for row in db.session.scalars(
            select(InboundMessage).where(InboundMessage.id.in_(inbound_ids))
        ):
            row.payload = {**(row.payload or {}), key: owner_id}
            row.processed_at = utcnow()


def photos_of(inbound_ids: list[int]) -> tuple[list[int], list[uploads.Photo]]:
    """The held photos that are downloaded (ids and bytes), in the order they were sent."""
    ids, photos = [], []
    rows = db.session.scalars(
        select(InboundMessage).where(InboundMessage.id.in_(inbound_ids)).order_by(InboundMessage.id)
    )
    for row in rows:
        photo = (row.payload or {}).get("photo")
        if photo:
            ids.append(row.id)
            photos.append(_read(photo))
    return ids, photos


def answer_notice(
    operator: User, channel: Channel, sender: str, notice_id: int, text: str
) -> tuple[NoticeResponse, int]:
    """The operator's answer from chat, with the photos they sent just before it."""
    held = held_photos(channel, sender)
    ids, photos = photos_of(held)
    photos = photos[: notices.MAX_RESPONSE_PHOTOS]
    ids = ids[: notices.MAX_RESPONSE_PHOTOS]
    response = notices.respond(operator, notice_id, text, photos)
    if ids:
        _consume(ids, response.id)
    return response, len(ids)


def open_answer(operator: User, now: datetime | None = None) -> NoticeResponse | None:
    """The operator's answer that photos sent now would join (see the module docstring)."""
    if operator.role is not Role.OPERATOR:
        return None
    response = db.session.scalar(
        select(NoticeResponse)
        .where(NoticeResponse.author_id == operator.id)
        .order_by(NoticeResponse.submitted_at.desc(), NoticeResponse.id.desc())
        .limit(1)
    )
    if response is None or response.reviewed_at is not None:
        return None
    last_photo = db.session.scalar(
        select(func.max(Attachment.created_at)).where(Attachment.notice_response_id == response.id)
    )
    last_activity = max(filter(None, [response.submitted_at, last_photo]))
    if (now or utcnow()) - last_activity > _window():
        return None
    return response


def open_concern(parent: User, now: datetime | None = None) -> Concern | None:
    """The parent's concern that photos sent now would join: reported from chat within the
    photo window and not yet decided (反映 first, then photos — as people naturally send them)."""
    if parent.role is not Role.PARENT:
        return None
    concern = db.session.scalar(
        select(Concern)
        .where(Concern.parent_id == parent.id, Concern.source == "wechat")
        .order_by(Concern.submitted_at.desc(), Concern.id.desc())
        .limit(1)
    )
    if concern is None or concern.status is not ConcernStatus.SUBMITTED:
        return None
    if (now or utcnow()) - concern.submitted_at > _window():
        return None
    return concern


def attach_held_photo(user: User, inbound_id: int) -> NoticeResponse | Concern | None:
    """Add a downloaded photo to the operator's open answer or the parent's just-sent concern;
    None (kept held for the next one) if there is none.

    Raises the services' errors (e.g. the answer was reviewed meanwhile); the photo then stays
    held for the next answer or concern.
    """
    ids, photos = photos_of([inbound_id])
    if not ids:
        return None
    if user.role is Role.PARENT:
        concern = open_concern(user)
        if concern is None:
            return None
        concerns.add_photos(user, concern.id, photos)
        _consume(ids, concern.id, key="concern_id")
        return concern
    response = open_answer(user)
    if response is None:
        return None
    notices.add_response_photos(user, response.id, photos)
    _consume(ids, response.id)
    return response


def mark_inbound_processed(inbound_ids: list[int]) -> None:
    with transaction():
        db.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(inbound_ids), InboundMessage.processed_at.is_(None))
            .values(processed_at=utcnow())
        )
