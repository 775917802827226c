"""Socket.IO: clients authenticate with their access token in the connect payload."""

from __future__ import annotations

from flask import Flask
from flask_socketio import ConnectionRefusedError, Namespace, join_room

from app.errors import Unauthenticated
from app.services.auth import authenticate_access_token


class LiveNamespace(Namespace):
    def on_connect(self, auth: dict | None = None) -> None:
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        if not token:
            raise ConnectionRefusedError("unauthenticated")
        try:
            user = authenticate_access_token(token)
        except Unauthenticated as exc:
            raise ConnectionRefusedError("unauthenticated") from exc
        join_room(f"user:{user.id}")


def init_app(app: Flask) -> None:
    from app.extensions import socketio

    socketio.on_namespace(LiveNamespace("/live"))
