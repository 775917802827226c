"""The one interface every chat channel implements, and what flows through it.

Adapters know no models (DESIGN.md, "Which way imports run"): the dispatcher hands them a
`Recipient` (an address, plus what the platform's rules need to know about it) and a rendered
`Message`, and gets back a `Delivery` or one of the errors below. Inbound callbacks are parsed by
the channels that have them (the official account and the WeCom app) into an `Inbound`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import requests


@dataclass(frozen=True)
class Message:
    """A notification rendered for chat: a title, plain-text lines, and a link."""

    title: str
    lines: tuple[str, ...] = ()
    url: str | None = None
    # Fields for a WeChat template message (keyword1…); adapters without templates ignore them.
    fields: tuple[tuple[str, str], ...] = ()

    def as_text(self, max_bytes: int | None = None) -> str:
        """Plain text, at most `max_bytes` in UTF-8 (see `fit_lines`)."""
        parts = [self.title, *self.lines]
        if self.url:
            parts.append(f"详情：{self.url}")
        return fit_lines(parts, max_bytes)

    def as_markdown(self, max_bytes: int | None = None) -> str:
        parts = [f"**{self.title}**", *(f"> {line}" for line in self.lines)]
        if self.url:
            parts.append(f"[查看详情]({self.url})")
        return fit_lines(parts, max_bytes)


# A line shortened to fit keeps at least this much; shorter than that, the whole text is cut.
MIN_KEPT_LINE_BYTES = 64


def fit_lines(parts: list[str], max_bytes: int | None) -> str:
    """The lines joined, at most `max_bytes` in UTF-8. What makes a message long is one long line
    (a pasted reason or answer), so that line is cut (ending in an ellipsis): the title, the
    chat commands and the link after it survive. Only if that cannot make room is the end cut."""
    text = "\n".join(parts)
    if max_bytes is None or len(text.encode()) <= max_bytes:
        return text
    excess = len(text.encode()) - max_bytes
    longest = max(range(len(parts)), key=lambda i: len(parts[i].encode()))
    keep = len(parts[longest].encode()) - excess
    if keep >= MIN_KEPT_LINE_BYTES:
        shortened = [*parts[:longest], truncate_utf8(parts[longest], keep), *parts[longest + 1 :]]
        text = "\n".join(shortened)
        if len(text.encode()) <= max_bytes:
            return text
    return truncate_utf8(text, max_bytes)


@dataclass(frozen=True)
class Recipient:
    """Where a message goes: an openid, a WeCom userid or a robot destination name."""

    address: str
    # When the person last wrote to the official account (its 48-hour service window).
    last_inbound_at: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    """What the platform answered when it accepted the message."""

    via: str  # e.g. "custom", "template", "markdown"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pace:
    """At most `limit` messages per `window_s` seconds to one destination."""

    limit: int
    window_s: float


class SendError(Exception):
    """The platform did not take the message. `permanent` errors are not retried."""

    def __init__(self, message: str, *, code: int | str | None = None, permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class Throttled(SendError):
    """The platform said "too fast": wait at least `retry_after` seconds (not an attempt)."""

    def __init__(self, message: str, *, retry_after: float, code: int | str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ChannelNotConfigured(SendError):
    def __init__(self, message: str):
        super().__init__(message, permanent=False)


class ChatChannel(ABC):
    """One chat platform. Subclasses set `name` (a `Channel` value) and `paces`."""

    name: ClassVar[str]
    # Per-destination limits the dispatcher keeps to (the platform's documented ones).
    paces: tuple[Pace, ...] = ()

    @abstractmethod
    def send(self, to: Recipient, message: Message) -> Delivery:
        """Deliver one message or raise `SendError` / `Throttled`."""

    def close(self) -> None:  # noqa: B027 - optional hook: most channels hold nothing
        """Release connections (HTTP sessions)."""


class HttpChannel(ChatChannel):
    """A channel that speaks JSON over HTTPS with one `requests.Session`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.http = requests.Session()
        # Every secret this adapter holds, scrubbed from error texts (URLs carry keys).
        self._secrets: list[str] = []

    def close(self) -> None:
        self.http.close()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def post_json(self, url: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """POST and return the JSON answer; network trouble and HTTP 5xx are transient.

        The body goes as compact UTF-8 JSON (`encode_json`), the bytes `fit_body` measured:
        requests' own `json=` escapes every Chinese character to six bytes (\\uXXXX)."""
        try:
            response = self.http.post(
                url,
                data=encode_json(body),
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
                **kwargs,
            )
        except requests.RequestException as exc:
            raise SendError(self.scrub(f"{type(exc).__name__}: {exc}")) from None
        if response.status_code >= 500:
            raise SendError(f"HTTP {response.status_code}", code=response.status_code)
        try:
            answer = response.json()
        except ValueError:
            raise SendError(f"HTTP {response.status_code}: not JSON") from None
        if response.status_code >= 400 and not isinstance(answer, dict):
            raise SendError(f"HTTP {response.status_code}", code=response.status_code)
        return answer if isinstance(answer, dict) else {}


def truncate_utf8(text: str, max_bytes: int, ellipsis: str = "…") -> str:
    """The longest prefix of `text` that fits `max_bytes` in UTF-8 (with an ellipsis if cut)."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    room = max(max_bytes - len(ellipsis.encode()), 0)
    return data[:room].decode("utf-8", errors="ignore") + ellipsis


def encode_json(body: Any) -> bytes:
    """A request body as the HTTP channels send it: compact JSON in UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def fit_body(
    build: Callable[[str], dict[str, Any]],
    text_of: Callable[[int | None], str],
    max_bytes: int,
) -> dict[str, Any]:
    """The body `build(text)` makes, with the text (`text_of(max_bytes)`, e.g.
    `Message.as_text`) cut so that the encoded body is at most `max_bytes`: these platforms limit
    the whole request, JSON escapes included."""
    text = text_of(None)
    body = build(text)
    excess = len(encode_json(body)) - max_bytes
    while excess > 0 and text:
        budget = len(text.encode()) - excess
        text = text_of(budget) if budget > 0 else ""
        body = build(text)
        excess = len(encode_json(body)) - max_bytes
    return body


def paces_from(
    settings: Mapping[str, Any], name: str, default: tuple[Pace, ...]
) -> tuple[Pace, ...]:
    """The platform's documented limits, unless `CHAT_PACES[name]` overrides them (tests)."""
    override = (settings.get("CHAT_PACES") or {}).get(name)
    if override is None:
        return default
    return tuple(Pace(int(limit), float(window)) for limit, window in override)
