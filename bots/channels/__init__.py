"""Chat channels behind one interface, and the registry that knows which are configured.

Like redash's destinations: each adapter class registers itself under its channel name; the
app builds the configured ones from its settings (`build`), and the dispatcher looks a channel
up by the name stored on the outbox row. A channel that is not configured is simply absent, and
its rows wait (retrying) without holding up any other channel's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bots.channels.base import (
    ChannelNotConfigured,
    ChatChannel,
    Delivery,
    Message,
    Pace,
    Recipient,
    SendError,
    Throttled,
    truncate_utf8,
)

Factory = Callable[[Mapping[str, Any]], ChatChannel | None]
_factories: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Register a factory that builds channel `name` from the settings (or None if unset)."""

    def decorator(factory: Factory) -> Factory:
        _factories[name] = factory
        return factory

    return decorator


class Registry:
    """The channels one app has configured, by channel name."""

    def __init__(self, channels: dict[str, ChatChannel]) -> None:
        self._channels = channels

    def get(self, name: str) -> ChatChannel:
        try:
            return self._channels[name]
        except KeyError:
            raise ChannelNotConfigured(f"channel {name} is not configured") from None

    def names(self) -> list[str]:
        return sorted(self._channels)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


def build(settings: Mapping[str, Any]) -> Registry:
    # Importing the adapters registers them.
    from bots.channels import (  # noqa: F401
        dingtalk,
        feishu,
        wechat_mp,
        wecom_app,
        wecom_robot,
        wxa_subscribe,
    )

    channels = {}
    for name, factory in _factories.items():
        channel = factory(settings)
        if channel is not None:
            channels[name] = channel
    return Registry(channels)


__all__ = [
    "ChannelNotConfigured",
    "ChatChannel",
    "Delivery",
    "Message",
    "Pace",
    "Recipient",
    "Registry",
    "SendError",
    "Throttled",
    "build",
    "register",
    "truncate_utf8",
]
