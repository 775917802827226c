"""The live view end to end with real ffmpeg and a real RTSP camera: a watch request starts the
camera's stream through the app's media runner, the signed playlist plays, the camera row
follows the camera's health, snapshots are stored, and commissioning probes the real stream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import time

import pytest
from PIL import Image
from sqlalchemy import select

from app import create_app
from app.extensions import db, socketio
from app.media_runner import MediaRunner
from app.models import (
    AreaKind,
    Camera,
    CameraStatus,
    CentreStatus,
    Commissioning,
    Finding,
    Notification,
    Snapshot,
)
from app.realtime import NAMESPACE
from app.services import base as events
from app.services.onboarding import active_standard
from tests import factories as f
from tests.media_helpers import fakecam_factory, wait_until


@pytest.fixture
def start_fakecam():
    with fakecam_factory() as start:
        yield start


@pytest.fixture
def runner(app):
    runner = MediaRunner(
        app,
        reconcile_every=0.3,
        idle_timeout=2,
        backoff_cap=2,
        stall_factor=3,
        start_timeout=10,
        stop_grace=2,
        tick=0.2,
    )
    runner.start()
    yield runner
    runner.stop()


@pytest.fixture
def kitchen(app, client, start_fakecam):
    camera_feed = start_fakecam(auth="cam:s3cret")
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心", status=CentreStatus.LIVE)
    camera = f.camera(
        centre, AreaKind.COOKING, url=camera_feed.url_with_credentials("cam", "s3cret")
    )
    parent = f.parent_of(centre)
    inspector = f.inspector_of(agency)
    db.session.commit()
    return {
        "feed": camera_feed,
        "centre": centre,
        "camera": camera,
        "parent_h": f.login(client, parent.username),
        "inspector_h": f.login(client, inspector.username),
    }


def _camera_status(camera_id: int) -> CameraStatus:
    db.session.rollback()  # end this test's read snapshot: the runner writes from its thread
    return db.session.get(Camera, camera_id).status


def test_a_watch_starts_the_stream_and_the_signed_playlist_plays(client, kitchen, runner):
    seen: list[tuple[str, dict]] = []
    events.subscribe(lambda name, data: seen.append((name, data)))
    camera = kitchen["camera"]
    grant = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["inspector_h"])
    assert grant.status_code == 200
    url = grant.get_json()["url"]

    def playlist_ready():
        response = client.get(url, buffered=True)
        return response.status_code == 200 and b"#EXTINF" in response.data

    assert wait_until(playlist_ready, timeout=15), "the playlist never appeared"
    playlist = client.get(url, buffered=True)
    segment_name = next(
        line for line in playlist.get_data(as_text=True).splitlines() if line.endswith(".ts")
    )
    segment = client.get(url.replace("index.m3u8", segment_name), buffered=True)
    assert segment.status_code == 200 and segment.data[:1] == b"\x47"  # MPEG-TS sync byte
    assert wait_until(lambda: _camera_status(camera.id) is CameraStatus.ONLINE, timeout=10)
    assert ("camera.status", "online") in [(n, d.get("status")) for n, d in seen]


def test_a_dead_camera_goes_offline_and_comes_back_online(client, kitchen, runner):
    camera = kitchen["camera"]
    client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["inspector_h"])
    assert wait_until(lambda: _camera_status(camera.id) is CameraStatus.ONLINE, timeout=15)
    kitchen["feed"].kill()
    assert wait_until(lambda: _camera_status(camera.id) is CameraStatus.OFFLINE, timeout=10)
    kitchen["feed"].restart()
    client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["inspector_h"])
    assert wait_until(lambda: _camera_status(camera.id) is CameraStatus.ONLINE, timeout=15)
    db.session.rollback()
    assert db.session.get(Camera, camera.id).reconnects_last_hour >= 1


def _open_all_day(centre) -> None:
    centre.meal_windows[0].starts_at = dt.time(0, 0)
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
    db.session.commit()


def _playing(client, url) -> bool:
    response = client.get(url, buffered=True)
    return response.status_code == 200 and b"#EXTINF" in response.data


def _segments(runner, camera_id: int) -> list[str]:
    playlist = runner.supervisor.playlist(str(camera_id))
    try:
        return [line for line in playlist.read_text().splitlines() if line.endswith(".ts")]
    except OSError:
        return []


def test_suspending_a_centre_stops_the_stream_its_parents_are_watching(
    app, client, kitchen, runner
):
    """A parent is watching during a meal window (so the room is kept warm too); the
    inspector suspends the centre: the stream stops within seconds, the parent's app hears
    why, and a new watch is refused with the reason."""
    _open_all_day(kitchen["centre"])
    camera = kitchen["camera"]
    grant = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["parent_h"])
    assert grant.status_code == 200, grant.get_json()
    url = grant.get_json()["url"]
    assert wait_until(lambda: _playing(client, url), timeout=15), "the stream never played"
    token = kitchen["parent_h"]["Authorization"].removeprefix("Bearer ")
    parent_app = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    assert parent_app.is_connected(NAMESPACE)

    suspended = client.post(
        f"/api/v1/centres/{kitchen['centre'].id}/suspension",
        json={"reason": "后厨整改期间暂停直播"},
        headers=kitchen["inspector_h"],
    )
    assert suspended.status_code == 200, suspended.get_json()

    # The lease lasts 90 s and the meal window hours: only the suspension stops it now.
    playlist = runner.supervisor.playlist(str(camera.id))
    assert wait_until(lambda: not playlist.exists(), timeout=8), "the stream kept running"
    assert not runner.supervisor.state(str(camera.id)).running
    assert client.get(url).status_code in (403, 404)
    again = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["parent_h"])
    assert again.status_code == 403
    assert again.get_json()["message"] == "该机构直播已暂停：后厨整改期间暂停直播"
    heard = [m for m in parent_app.get_received(NAMESPACE) if m["name"] == "centre.suspended"]
    assert [m["args"][0]["reason"] for m in heard] == ["后厨整改期间暂停直播"]
    time.sleep(1.5)  # a reconcile or more later, nothing has started it again
    assert not playlist.exists()


def test_an_inspector_watching_a_suspended_centre_keeps_the_stream(client, kitchen, runner):
    _open_all_day(kitchen["centre"])
    camera = kitchen["camera"]
    parent = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["parent_h"])
    assert parent.status_code == 200  # two leases on one stream until the suspension
    url = client.post(
        f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["inspector_h"]
    ).get_json()["url"]
    assert wait_until(lambda: _playing(client, url), timeout=15), "the stream never played"
    client.post(
        f"/api/v1/centres/{kitchen['centre'].id}/suspension",
        json={"reason": "整改"},
        headers=kitchen["inspector_h"],
    )
    before = _segments(runner, camera.id)
    assert wait_until(lambda: _segments(runner, camera.id)[-1:] != before[-1:], timeout=8)
    assert runner.supervisor.state(str(camera.id)).viewers == 1  # the inspector's lease only
    assert _playing(client, url)
    refused = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["parent_h"])
    assert refused.status_code == 403


def test_a_snapshot_is_stored_with_its_hash_and_served_to_staff(client, kitchen):
    camera = kitchen["camera"]
    response = client.post(
        f"/api/v1/cameras/{camera.id}/snapshots",
        json={"reason": "manual"},
        headers=kitchen["inspector_h"],
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    image = client.get(body["image_url"], headers=kitchen["inspector_h"], buffered=True)
    assert image.status_code == 200
    assert hashlib.sha256(image.data).hexdigest() == body["sha256"]
    assert Image.open(io.BytesIO(image.data)).size == (1280, 720)
    assert db.session.scalar(select(Snapshot.taken_by_id)) is not None


def test_a_parent_cannot_take_snapshots(client, kitchen):
    response = client.post(
        f"/api/v1/cameras/{kitchen['camera'].id}/snapshots", json={}, headers=kitchen["parent_h"]
    )
    assert response.status_code == 403


def test_a_covered_lens_flags_the_camera_as_tampered_with_a_finding(
    app, client, start_fakecam, kitchen
):
    black = start_fakecam(pattern="black")
    covered = f.camera(kitchen["centre"], AreaKind.PREP, url=black.url)
    db.session.commit()
    response = client.post(
        f"/api/v1/cameras/{covered.id}/snapshots", json={}, headers=kitchen["inspector_h"]
    )
    assert response.status_code == 201
    assert _camera_status(covered.id) is CameraStatus.TAMPERED
    finding = db.session.scalar(select(Finding).where(Finding.centre_id == kitchen["centre"].id))
    assert "画面全黑" in finding.description
    assert [s.id for s in finding.snapshots] == [response.get_json()["id"]]


# --- commissioning against real streams ---------------------------------------------------------


@pytest.fixture
def quick_probe_app(app, app_config):
    """The same database with shorter probes; `app` cleans the database up afterwards."""
    fast = create_app(dataclasses.replace(app_config, PROBE_READ_SECONDS=3.0))
    with fast.app_context():
        yield fast
        db.session.remove()
        db.engine.dispose()


def _commissioning_centre(feed_url: str):
    meilan = f.district()
    centre = f.centre(meilan, status=CentreStatus.COMMISSIONING)
    for kind in (AreaKind.PREP, AreaKind.STORAGE, AreaKind.COOKING, AreaKind.WASHING):
        f.camera(centre, kind, url=feed_url)
    technician = f.technician_for(centre)
    db.session.add(
        Commissioning(
            centre_id=centre.id, standard_id=active_standard().id, technician_id=technician.id
        )
    )
    db.session.commit()
    return centre, technician


def _automatic(client, centre, technician) -> dict[str, bool]:
    response = client.post(
        f"/api/v1/centres/{centre.id}/checklist/automatic",
        headers=f.login(client, technician.username),
    )
    assert response.status_code == 200, response.get_json()
    return {
        i["code"]: i["passed"] for i in response.get_json()["items"] if i["kind"] == "automatic"
    }


def test_automatic_checks_pass_on_a_720p_camera_with_a_1s_gop(quick_probe_app, start_fakecam):
    feed = start_fakecam(width=1280, height=720, fps=25, gop=25)
    centre, technician = _commissioning_centre(feed.url)
    # The four rooms' rows point at one stream here, which is pulled once, not four times.
    real_prober = quick_probe_app.extensions["bk_prober"]
    pulled: list[str] = []
    quick_probe_app.extensions["bk_prober"] = lambda url: pulled.append(url) or real_prober(url)
    results = _automatic(quick_probe_app.test_client(), centre, technician)
    probed = db.session.scalars(select(Camera).where(Camera.centre_id == centre.id)).all()
    why = {"camera running": feed.running, "probes": [c.probe for c in probed]}
    # What the probes measure; the rooms' coverage and "online for 10 minutes" also need the
    # cameras' status, which only a running stream gives (see the go-live test below).
    for code in (
        "stream_reachable",
        "codec_h264",
        "resolution",
        "frame_rate",
        "keyframe_interval",
    ):
        assert results[code] is True, (code, results, why)
    assert pulled == [feed.url]
    assert {c.probe["height"] for c in probed} == {720}


def test_automatic_checks_fail_on_a_480p_camera_with_a_4s_gop(quick_probe_app, start_fakecam):
    feed = start_fakecam(width=640, height=480, fps=25, gop=100)
    centre, technician = _commissioning_centre(feed.url)
    results = _automatic(quick_probe_app.test_client(), centre, technician)
    assert results["stream_reachable"] is True
    assert results["resolution"] is False
    assert results["keyframe_interval"] is False
    refused = quick_probe_app.test_client().post(
        f"/api/v1/centres/{centre.id}/sign-off",
        headers=f.login(quick_probe_app.test_client(), technician.username),
    )
    assert refused.status_code == 409
    assert "分辨率不低于 720p" in refused.get_json()["message"]


# --- schedules -----------------------------------------------------------------------------------


def test_the_meal_window_schedule_snapshots_the_rooms_parents_see(app, kitchen):
    kitchen["centre"].meal_windows[0].starts_at = dt.time(0, 0)
    kitchen["centre"].meal_windows[0].ends_at = dt.time(23, 59, 59)
    storage = f.camera(kitchen["centre"], AreaKind.STORAGE, url=kitchen["feed"].url)
    db.session.commit()
    taken = app.extensions["bk_tasks"]["meal_snapshots"].call_local()
    db.session.rollback()
    cameras = {db.session.get(Snapshot, sid).camera_id for sid in taken}
    assert cameras == {kitchen["camera"].id}  # not the storage room: parents do not see it
    assert storage.id not in cameras


def test_a_live_centre_whose_camera_is_gone_gets_one_finding_a_day(quick_probe_app, start_fakecam):
    feed = start_fakecam(width=1280, height=720, gop=25)
    centre, _ = _commissioning_centre(feed.url)
    centre.status = CentreStatus.LIVE
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator"
    db.session.commit()
    recheck = quick_probe_app.extensions["bk_tasks"]["commissioning_recheck"]
    assert recheck.call_local() == []
    feed.kill()
    raised = recheck.call_local()
    assert len(raised) >= 1
    assert recheck.call_local() == []  # same day, same failure: nothing new
    descriptions = db.session.scalars(select(Finding.description)).all()
    assert "复检未通过：每路视频流可连接" in descriptions
    told = db.session.scalars(
        select(Notification.recipient_id).where(Notification.event == "centre.recheck_failed")
    ).all()
    assert set(told) == {operator.id}


def test_a_centre_goes_live_when_every_required_item_passes(quick_probe_app, start_fakecam, runner):
    feed = start_fakecam(width=1280, height=720, fps=25, gop=25)
    centre, technician = _commissioning_centre(feed.url)
    client = quick_probe_app.test_client()
    headers = f.login(client, technician.username)
    # Not yet: no stream has been pulled, so no room has an online camera.
    first = _automatic(client, centre, technician)
    assert (first["area_coverage"], first["online_recent"]) == (False, False)
    # The technician watches each room's picture: the media runner pulls the streams and the
    # cameras come online; then ten minutes and more pass.
    cameras = db.session.scalars(select(Camera).where(Camera.centre_id == centre.id)).all()
    for camera in cameras:
        watched = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=headers)
        assert watched.status_code == 200, watched.get_json()
    for camera in cameras:
        assert wait_until(lambda c=camera: _camera_status(c.id) is CameraStatus.ONLINE, 20)
    for camera in db.session.scalars(select(Camera).where(Camera.centre_id == centre.id)):
        camera.status_changed_at -= dt.timedelta(minutes=11)
    db.session.commit()
    assert all(_automatic(client, centre, technician).values())
    checklist = client.get(f"/api/v1/centres/{centre.id}/checklist", headers=headers).get_json()
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(photo, "JPEG")
    for item in checklist["items"]:
        if item["kind"] == "manual" and item["required"]:
            response = client.post(
                f"/api/v1/centres/{centre.id}/checklist/items/{item['item_id']}",
                data={"photos": [(io.BytesIO(photo.getvalue()), "evidence.jpg")]},
                headers=headers,
                content_type="multipart/form-data",
            )
            assert response.status_code == 200, response.get_json()
    ready = client.get(f"/api/v1/centres/{centre.id}/checklist", headers=headers).get_json()
    assert ready["ready"] is True, ready["blocking"]
    signed = client.post(f"/api/v1/centres/{centre.id}/sign-off", headers=headers)
    assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["status"] == "live"
