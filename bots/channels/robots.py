"""What the three group-robot adapters share: destinations from `CHAT_ROBOTS`, each with its own
key or secret, and one JSON POST per message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bots.channels.base import HttpChannel, SendError


class RobotChannel(HttpChannel):
    """A group robot: the recipient address is a destination name from `CHAT_ROBOTS`."""

    def __init__(
        self, api_base: str, destinations: Mapping[str, Mapping[str, str]], timeout: float
    ) -> None:
        super().__init__(timeout)
        self.api_base = api_base.rstrip("/")
        self.destinations = {name: dict(options) for name, options in destinations.items()}
        for options in self.destinations.values():
            self._secrets.extend(v for k, v in options.items() if k != "channel" and v)

    def options(self, destination: str) -> dict[str, str]:
        try:
            return self.destinations[destination]
        except KeyError:
            raise SendError(f"robot destination {destination!r} not configured") from None


def robots_of(settings: Mapping[str, Any], channel: str) -> dict[str, dict[str, str]]:
    """This channel's destinations in `CHAT_ROBOTS` (checked when the config was loaded)."""
    robots: Mapping[str, Any] = json.loads(settings.get("CHAT_ROBOTS") or "{}")
    return {name: options for name, options in robots.items() if options["channel"] == channel}
