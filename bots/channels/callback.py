"""Inbound callbacks of the WeChat family (official account and WeCom app): the checks that run
at the edge before anything is stored, and what a parsed message looks like.

- Signatures are computed by wechatpy (sorted token/timestamp/nonce[/Encrypt] SHA-1) and compared
  in constant time; the timestamp must be within the window, so a captured request cannot be
  replayed later (inside the window a replay is harmless: the message id deduplicates it).
- XML goes through defusedxml first, with DTDs forbidden: no entity (XXE, billion laughs) is ever
  expanded, and only then does wechatpy's parser (xmltodict) see the text.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.utils import WeChatSigner


class CallbackRefused(Exception):
    """The callback is refused with this HTTP status before anything is stored."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    """One message or event, as the router needs it (no platform types leak past here)."""

    channel: str
    dedupe_key: str
    sender: str  # openid / WeCom userid
    account: str  # our side: the official account's id / the corp id
    msg_type: str  # text, image, event, …
    created_at: int
    text: str | None = None
    media_id: str | None = None
    event: str | None = None
    event_key: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def check_signature(
    token: str,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    *extra: str,
    window_s: int,
    now: float | None = None,
) -> None:
    """Refuse (403) a missing, wrong or stale signature."""
    if not signature or not timestamp or not nonce:
        raise CallbackRefused(403, "missing_signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise CallbackRefused(403, "bad_timestamp") from None
    expected = sign(token, timestamp, nonce, *extra)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise CallbackRefused(403, "bad_signature")
    if abs((time.time() if now is None else now) - sent_at) > window_s:
        raise CallbackRefused(403, "stale_timestamp")


def safe_xml(body: bytes, max_bytes: int) -> dict[str, str]:
    """The <xml> document's child elements as a dict; 413/400 for anything else."""
    if len(body) > max_bytes:
        raise CallbackRefused(413, "too_large")
    if not body.strip():
        raise CallbackRefused(400, "empty_body")
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True)
    except DefusedXmlException:
        raise CallbackRefused(400, "forbidden_xml") from None
    except (ParseError, ValueError):
        raise CallbackRefused(400, "not_xml") from None
    if root.tag != "xml":
        raise CallbackRefused(400, "not_a_callback")
    return {child.tag: (child.text or "") for child in root}


def inbound_from(channel: str, message: Any) -> Inbound:
    """An `Inbound` from a wechatpy message or event object."""
    data: dict[str, Any] = dict(message._data)
    msg_type = str(message.type)
    try:
        created = int(str(data.get("CreateTime") or 0), 10)
    except ValueError:
        # Plain mode signs the query, not the body: a signed request can carry anything here.
        raise CallbackRefused(400, "bad_create_time") from None
    sender = str(data.get("FromUserName") or "")
    if msg_type == "event":
        event = str(data.get("Event") or "").lower()
        # Events have no id: WeChat's rule is sender + time + event.
        key = f"evt:{sender}:{created}:{event}"
        return Inbound(
            channel=channel,
            dedupe_key=key,
            sender=sender,
            account=str(data.get("ToUserName") or ""),
            msg_type=msg_type,
            created_at=created,
            event=event,
            event_key=str(data.get("EventKey") or "") or None,
            fields=data,
        )
    return Inbound(
        channel=channel,
        dedupe_key=f"msg:{data.get('MsgId') or f'{sender}:{created}'}",
        sender=sender,
        account=str(data.get("ToUserName") or ""),
        msg_type=msg_type,
        created_at=created,
        text=data.get("Content") if msg_type == "text" else None,
        media_id=data.get("MediaId"),
        fields=data,
    )
