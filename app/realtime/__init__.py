"""Socket.IO: clients authenticate with their access token in the connect payload and join the
rooms of their scope; domain events published by services after commit are relayed there."""

from __future__ import annotations

from typing import Any

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
    snapshots of their centres, and their centre's live view being suspended or back); the
    recipient of a personal event."""
    rooms: list[str] = ["admin"]
    centre_id, agency_id = data.get("centre_id"), data.get("agency_id")
    if name.startswith(("notice.", "patrol.", "concern.", "centre.", "camera.", "snapshot.")):
        if centre_id is not None:
            rooms.append(f"centre:{centre_id}:staff")
        agency_ids = [agency_id] if agency_id is not None else []
        agency_ids += [a for a in data.get("agency_ids") or () if a not in agency_ids]
        rooms.extend(f"agency:{a}" for a in agency_ids)
    if centre_id is not None and (
        name.startswith(("camera.status", "snapshot.created")) or name in PARENT_CENTRE_EVENTS
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


def relay(name: str, data: dict[str, Any]) -> None:
    for room in target_rooms(name, data):
        socketio.emit(name, payload_for(room, data), to=room, namespace=NAMESPACE)


def init_app(app: Flask) -> None:
    socketio.on_namespace(LiveNamespace(NAMESPACE))
    subscribe(relay)
