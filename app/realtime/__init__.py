"""Socket.IO: clients authenticate with their access token in the connect payload and join the
rooms of their scope; domain events published by services after commit are relayed there.

Rooms are joined at connect, so a change of scope while a socket is open (a parent linked to or
unlinked from a centre, a user deactivated) is applied to the open sockets by a room order: a
message to the user's own room that each server process applies to its own sockets and that
never reaches a client. Orders travel like events, through the Redis message queue when there
is one, so they reach a socket on any web process, whichever process made the change.
"""

from __future__ import annotations

from typing import Any

import socketio as python_socketio
from flask import Flask
from flask_socketio import ConnectionRefusedError, Namespace, join_room
from sqlalchemy import select

from app.errors import Unauthenticated
from app.extensions import db, socketio
from app.models import ParentLink, Role
from app.services.auth import authenticate_access_token
from app.services.base import subscribe

NAMESPACE = "/live"


def rooms_for(user) -> list[str]:  # type: ignore[no-untyped-def]
    """The rooms a user may listen to, from their scope only."""
    rooms = [f"user:{user.id}"]
    if user.role is Role.OPERATOR and user.centre_id:
        rooms.append(f"centre:{user.centre_id}:staff")
    elif user.role is Role.INSPECTOR and user.agency_id:
        rooms.append(f"agency:{user.agency_id}")
    elif user.role is Role.PARENT:
        centre_ids = db.session.scalars(
            select(ParentLink.centre_id).where(ParentLink.parent_id == user.id)
        )
        rooms.extend(f"centre:{cid}:parents" for cid in centre_ids)
    elif user.role is Role.ADMIN:
        rooms.append("admin")
    return rooms


class LiveNamespace(Namespace):
    def on_connect(self, auth: dict | None = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            raise ConnectionRefusedError("unauthenticated")
        try:
            user = authenticate_access_token(token)
        except Unauthenticated as exc:
            raise ConnectionRefusedError("unauthenticated") from exc
        for room in rooms_for(user):
            join_room(room)


# A centre's lifecycle events its parents hear: the live view stopped (with the reason they
# are shown) or is back.
PARENT_CENTRE_EVENTS = frozenset({"centre.suspended", "centre.live"})

# Keys that say who a parent is: they address the parent's own room and reach nobody else
# (a concern's reporter stays unknown to the centre's staff, and may have asked to be anonymous).
PERSONAL_KEYS = ("parent_id",)


def target_rooms(name: str, data: dict[str, Any]) -> list[str]:
    """Who hears an event: staff of the centre and its regulators (`agency_id`, or `agency_ids`
    when several agencies cover the centre); parents only what they may see (camera status and
    snapshots of their centres, of rooms shown to parents: `shown_to_parents`; their centre's
    live view being suspended or back); the recipient of a personal event."""
    rooms: list[str] = ["admin"]
    centre_id, agency_id = data.get("centre_id"), data.get("agency_id")
    if name.startswith(("notice.", "patrol.", "concern.", "centre.", "camera.", "snapshot.")):
        if centre_id is not None:
            rooms.append(f"centre:{centre_id}:staff")
        agency_ids = [agency_id] if agency_id is not None else []
        agency_ids += [a for a in data.get("agency_ids") or () if a not in agency_ids]
        rooms.extend(f"agency:{a}" for a in agency_ids)
    # Fail closed: a camera event says it may be shown to parents, or they do not hear it.
    if centre_id is not None and (
        (
            name.startswith(("camera.status", "snapshot.created"))
            and data.get("shown_to_parents") is True
        )
        or name in PARENT_CENTRE_EVENTS
    ):
        rooms.append(f"centre:{centre_id}:parents")
    if data.get("parent_id") is not None:
        rooms.append(f"user:{data['parent_id']}")
    return rooms


def payload_for(room: str, data: dict[str, Any]) -> dict[str, Any]:
    """What one room receives: everything for admins and the parent concerned, the event
    without the personal keys for everyone else."""
    if room == "admin" or (
        data.get("parent_id") is not None and room == f"user:{data['parent_id']}"
    ):
        return data
    return {key: value for key, value in data.items() if key not in PERSONAL_KEYS}


# --- room orders ---------------------------------------------------------------------------

# The event name of a room order. Managers take it out of the stream before any client sees it.
ROOM_ORDER = "bk.room_order"


def _apply_order(manager: python_socketio.Manager, namespace: str, room: str, order: dict) -> None:
    """Apply an order to this process's sockets in `room` (a user's own room): join or leave
    rooms, or be disconnected."""
    for sid, _eio_sid in list(manager.get_participants(namespace, room)):
        if order.get("disconnect"):
            manager.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            continue
        for leave in order.get("leave") or ():
            manager.basic_leave_room(sid, namespace, leave)
        for join in order.get("join") or ():
            manager.basic_enter_room(sid, namespace, join)


class LocalManager(python_socketio.Manager):
    """One process (the embedded default, tests): orders are applied here and now."""

    def emit(  # type: ignore[no-untyped-def]
        self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs
    ):
        if event == ROOM_ORDER:
            return _apply_order(self, namespace, to or room, data)
        return super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)


class QueueManager(python_socketio.RedisManager):
    """Several processes sharing Redis: an order is published like an event, and every
    process (this one included) applies it to its own sockets on receipt."""

    def _handle_emit(self, message: dict) -> None:
        if message.get("event") == ROOM_ORDER:
            data = message.get("data")
            order = data[0] if isinstance(data, list) and data else data
            if isinstance(order, dict):
                _apply_order(self, message.get("namespace") or NAMESPACE, message["room"], order)
            return
        super()._handle_emit(message)


def client_manager(redis_url: str | None) -> python_socketio.Manager:
    """The Socket.IO client manager for a new server: one per app (never shared)."""
    if redis_url:
        # The channel Flask-SocketIO uses by default, so every process meets on it.
        return QueueManager(redis_url, channel="flask-socketio")
    return LocalManager()


def order_user_sockets(user_id: int, **order: Any) -> None:
    """Send an order to every open socket of the user, on whichever process it is."""
    socketio.emit(ROOM_ORDER, order, to=f"user:{user_id}", namespace=NAMESPACE)


def _apply_scope_change(name: str, data: dict[str, Any]) -> None:
    if name == "parent.linked":
        room = f"centre:{data['linked_centre_id']}:parents"
        order_user_sockets(data["parent_id"], join=[room])
    elif name == "parent.unlinked":
        room = f"centre:{data['linked_centre_id']}:parents"
        order_user_sockets(data["parent_id"], leave=[room])
    elif name == "user.deactivated":
        order_user_sockets(data["user_id"], disconnect=True)


def relay(name: str, data: dict[str, Any]) -> None:
    for room in target_rooms(name, data):
        socketio.emit(name, payload_for(room, data), to=room, namespace=NAMESPACE)
    _apply_scope_change(name, data)


def init_app(app: Flask) -> None:
    socketio.on_namespace(LiveNamespace(NAMESPACE))
    subscribe(relay)
