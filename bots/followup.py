"""Work done after a callback was answered: downloading a photo sent in chat (temporary media
expire after three days, so at once) and adding it to the sender's open answer."""

from __future__ import annotations

import logging

from flask import Flask

from app.errors import DomainError
from app.models import Channel
from app.services import chat
from bots.channels import SendError

log = logging.getLogger(__name__)


def fetch_photo(app: Flask, inbound_id: int) -> str:
    """Download, store and place one chat photo; returns what became of it."""
    row = chat.get_inbound(inbound_id)
    if row is None or row.processed_at is not None:
        return "gone"
    channel, sender = row.channel, row.sender
    payload = dict(row.payload or {})
    if "photo" not in payload:
        media_id = payload.get("MediaId")
        if not media_id:
            chat.photo_failed(inbound_id, "no MediaId")
            return "failed"
        try:
            data = app.extensions["bk_chat"].get(channel.value).download_media(media_id)
        except SendError as exc:
            if exc.permanent:
                chat.photo_failed(inbound_id, str(exc))
                return "failed"
            log.warning("photo %s: download failed, will retry: %s", inbound_id, exc)
            return "retry"
        try:
            chat.hold_photo(inbound_id, data)
        except DomainError as exc:  # not an image, too big
            chat.photo_failed(inbound_id, exc.message)
            return "failed"
    user = chat.chat_user(Channel(channel), sender)
    if user is None:
        return "held"
    try:
        response = chat.attach_held_photo(user, inbound_id)
    except DomainError as exc:
        # e.g. the answer was reviewed meanwhile: the photo stays held for the next answer.
        log.info("photo %s held: %s", inbound_id, exc.message)
        return "held"
    return "attached" if response is not None else "held"
