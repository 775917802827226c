"""Media nodes share the cameras out and take over from one that dies: the claiming rules as
data, and two real media runners (real ffmpeg, the GStreamer test camera) where one stops."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.media_runner import MediaRunner
from app.models import AreaKind, Camera, CameraStatus
from app.services import media_nodes
from app.services.cameras import media_sources
from media.supervisor import Status
from tests import factories as f
from tests.media_helpers import fakecam_factory, wait_until


def _cameras(count: int) -> list[int]:
    centre = f.centre(f.district())
    ids = [f.camera(centre, AreaKind.COOKING).id for _ in range(count)]
    db.session.commit()
    return ids


def _held() -> dict[str | None, list[int]]:
    db.session.rollback()  # a fresh read: the runners write from their own threads
    held: dict[str | None, list[int]] = {}
    for camera in db.session.scalars(select(Camera).order_by(Camera.id)):
        held.setdefault(camera.media_node, []).append(camera.id)
    return held


def test_live_nodes_share_the_cameras_and_take_over_from_a_silent_one(app):
    ids = _cameras(5)
    t0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    for name in ("m1", "m2"):
        media_nodes.heartbeat(name, t0)
    assert media_nodes.claim("m1", t0) == ids[:3]  # its share: 5 cameras / 2 nodes, rounded up
    assert media_nodes.claim("m2", t0) == ids[3:]
    assert media_nodes.claim("m1", t0) == []  # nothing left to take
    assert [c.id for c, _ in media_sources("m2")] == ids[3:]

    # m2 falls silent; once it has been quiet for MEDIA_NODE_DEAD_S, m1 takes its cameras.
    soon = t0 + timedelta(seconds=app.config["MEDIA_NODE_DEAD_S"] - 1)
    media_nodes.heartbeat("m1", soon)
    assert media_nodes.claim("m1", soon) == []
    later = t0 + timedelta(seconds=app.config["MEDIA_NODE_DEAD_S"] + 1)
    media_nodes.heartbeat("m1", later)
    assert media_nodes.live_nodes(later) == ["m1"]
    assert media_nodes.claim("m1", later) == ids[3:]
    assert _held() == {"m1": ids}

    # m2 comes back: nothing is taken from a live node, so no stream moves twice.
    media_nodes.heartbeat("m2", later)
    assert media_nodes.claim("m2", later) == []
    # A camera registered now goes to the node with room for it.
    [new] = _cameras(1)
    assert media_nodes.claim("m1", later) == []  # m1 holds 5 of 6: over its share of 3
    assert media_nodes.claim("m2", later) == [new]


def test_a_switched_off_camera_is_claimed_by_nobody(app):
    ids = _cameras(2)
    db.session.get(Camera, ids[0]).is_enabled = False
    db.session.commit()
    media_nodes.heartbeat("m1")
    assert media_nodes.claim("m1") == [ids[1]]


def test_nodes_claiming_at_the_same_instant_take_different_cameras(app, app_config):
    ids = _cameras(12)
    names = [f"m{n}" for n in range(4)]
    for name in names:
        media_nodes.heartbeat(name)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def claim(name: str) -> None:
        try:
            with app.app_context():
                barrier.wait()
                taken[name] = media_nodes.claim(name)
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    claimed = [i for got in taken.values() for i in got]
    assert sorted(claimed) == ids  # every camera once, none twice
    assert all(len(got) <= 3 for got in taken.values())


@pytest.fixture
def second_node_app(app, app_config, tmp_path):
    """Another media machine: the same database, its own HLS disk."""
    other = create_app(dataclasses.replace(app_config, HLS_ROOT=str(tmp_path / "hls-m2")))
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def _runner(app, node: str) -> MediaRunner:
    return MediaRunner(
        app,
        node,
        reconcile_every=0.3,
        idle_timeout=2,
        backoff_cap=2,
        start_timeout=10,
        stop_grace=2,
        tick=0.2,
    )


def test_a_dead_media_nodes_camera_is_streaming_again_on_the_other_node(app, second_node_app):
    app.config["MEDIA_NODE_DEAD_S"] = 2.0
    second_node_app.config["MEDIA_NODE_DEAD_S"] = 2.0
    with fakecam_factory() as start:
        feed = start(width=640, height=360)
        centre = f.centre(f.district())
        # Open all day, so the rooms parents see are kept warm whenever the test runs.
        centre.meal_windows[0].starts_at = dt.time(0, 0)
        centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
        cameras = [
            f.camera(centre, kind, url=feed.url) for kind in (AreaKind.PREP, AreaKind.COOKING)
        ]
        db.session.commit()
        ids = [c.id for c in cameras]

        # Both machines are up (a deploy starts them together), so they share the cameras.
        for name in ("m1", "m2"):
            media_nodes.heartbeat(name)
        m1, m2 = _runner(app, "m1").start(), _runner(second_node_app, "m2").start()
        try:

            def online_on_both() -> bool:
                held = _held()
                return (
                    sorted(held.get("m1", []) + held.get("m2", [])) == ids
                    and len(held.get("m1", [])) == 1
                    and all(db.session.get(Camera, i).status is CameraStatus.ONLINE for i in ids)
                )

            assert wait_until(online_on_both, 30), _held()
            [lost] = _held()["m2"]
            m2.stop()  # the machine goes away: no more heartbeats, its ffmpeg gone
            assert wait_until(lambda: _held().get("m1") == ids, 15), _held()
            assert m1.supervisor.wait_for_status(str(lost), Status.ONLINE, timeout=20)
            assert (m1.supervisor.hls_dir(str(lost)) / "index.m3u8").is_file()
        finally:
            m1.stop()
            m2.stop()
