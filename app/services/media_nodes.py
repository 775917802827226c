"""Media nodes share the cameras out between them and take over from one that died.

Each media process (`flask bk media --node NAME`) says it is alive every few seconds
(`heartbeat`) and then claims cameras (`claim`): those no node holds yet, and those held by a
node silent for longer than `MEDIA_NODE_DEAD_S`. A node takes no more than its fair share — the
enabled cameras divided by the live nodes, rounded up — so a new or returning node fills up
with what is free and nothing is taken from a live node (no streams moved back and forth).
Claims are one transaction each: on PostgreSQL the rows are locked with SKIP LOCKED, so two
nodes claiming at the same instant take different cameras; SQLite serialises write
transactions.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import Camera, MediaNode, utcnow
from app.services import audit
from app.services.base import publish, transaction


def _dead_after() -> timedelta:
    return timedelta(seconds=float(current_app.config["MEDIA_NODE_DEAD_S"]))


def heartbeat(name: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    with transaction():
        node = db.session.get(MediaNode, name)
        if node is None:
            db.session.add(MediaNode(name=name, started_at=now, last_seen_at=now))
        else:
            node.last_seen_at = now


def live_nodes(now: datetime | None = None) -> list[str]:
    since = (now or utcnow()) - _dead_after()
    return list(
        db.session.scalars(
            select(MediaNode.name).where(MediaNode.last_seen_at >= since).order_by(MediaNode.name)
        )
    )


def claim(name: str, now: datetime | None = None) -> list[int]:
    """Take this node's share of the cameras nobody alive holds; returns the ids taken."""
    now = now or utcnow()
    with transaction():
        live = set(live_nodes(now)) | {name}
        enabled = db.session.scalar(
            select(func.count(Camera.id)).where(Camera.is_enabled.is_(True))
        )
        mine = db.session.scalar(
            select(func.count(Camera.id)).where(
                Camera.is_enabled.is_(True), Camera.media_node == name
            )
        )
        room = math.ceil((enabled or 0) / len(live)) - (mine or 0)
        if room <= 0:
            return []
        orphans = (
            select(Camera)
            .where(
                Camera.is_enabled.is_(True),
                or_(Camera.media_node.is_(None), Camera.media_node.not_in(live)),
            )
            .order_by(Camera.id)
            .limit(room)
            .with_for_update(skip_locked=True)
        )
        taken = []
        for camera in db.session.scalars(orphans):
            previous, camera.media_node = camera.media_node, name
            taken.append(camera.id)
            audit.record(
                "camera.media_node",
                object_type="camera",
                object_id=camera.id,
                node=name,
                previous=previous,
            )
            publish("camera.media_node", camera_id=camera.id, centre_id=camera.centre_id, node=name)
    return taken
