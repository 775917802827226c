"""The live view end to end with real ffmpeg and a real RTSP camera: a watch request starts the
camera's stream through the app's media runner, the signed playlist plays, the camera row
follows the camera's health, snapshots are stored, and commissioning probes the real stream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app import create_app
from app.extensions import db, socketio
from app.media_runner import MediaRunner, probe_dict
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
from media import hls
from media.supervisor import CameraSource, Status, Supervisor
from tests import factories as f
from tests.media_helpers import fakecam_factory, probe_segment, wait_until


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
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator"
    db.session.commit()
    return {
        "feed": camera_feed,
        "centre": centre,
        "camera": camera,
        "operator": operator,
        "parent_h": f.login(client, parent.username),
        "inspector_h": f.login(client, inspector.username),
    }


@pytest.fixture
def seen_events():
    """Domain events published (after commit) during the test, as (name, data)."""
    seen: list[tuple[str, dict]] = []

    def record(name: str, data: dict) -> None:
        seen.append((name, data))

    events.subscribe(record)
    yield seen
    events.unsubscribe(record)


def _camera_status(camera_id: int) -> CameraStatus:
    db.session.rollback()  # end this test's read snapshot: the runner writes from its thread
    return db.session.get(Camera, camera_id).status


def _meal_time_all_day(centre) -> None:
    """A meal window open now: the rooms parents see are kept warm and operators are told when
    a camera goes bad."""
    centre.meal_windows[0].starts_at = dt.time(0, 0)
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)


def _hls_dir(app, camera_id: int) -> Path:
    return Path(app.config["HLS_ROOT"]) / str(camera_id)


def _stream_has_run_for(app, camera_id: int, seconds: float) -> bool:
    """The camera's live playlist spans at least `seconds` of segments."""
    segments = hls.listed_segments(_hls_dir(app, camera_id))
    return len(segments) >= 2 and segments[-1].offset - segments[0].offset >= seconds


def _newest_segment_name(app, camera_id: int) -> str | None:
    segments = hls.listed_segments(_hls_dir(app, camera_id))
    return segments[-1].name if segments else None


def _operator_alerts(event: str) -> list[int | None]:
    db.session.rollback()
    return list(
        db.session.scalars(select(Notification.recipient_id).where(Notification.event == event))
    )


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
    app, client, start_fakecam, kitchen, seen_events
):
    _meal_time_all_day(kitchen["centre"])
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
    tampered = [d for n, d in seen_events if n == "camera.tampered"]
    assert [(d["camera_id"], d["finding_id"]) for d in tampered] == [(covered.id, finding.id)]
    assert _operator_alerts("camera.tampered") == [kitchen["operator"].id]


def test_a_frozen_picture_on_a_live_camera_flags_it_tampered(
    app, client, start_fakecam, kitchen, runner, seen_events
):
    _meal_time_all_day(kitchen["centre"])  # the runner keeps the room's stream running
    still = start_fakecam(frozen=True)
    frozen = f.camera(kitchen["centre"], AreaKind.PREP, url=still.url)
    db.session.commit()
    assert wait_until(lambda: _camera_status(frozen.id) is CameraStatus.ONLINE, timeout=20)
    span = app.config["FROZEN_MIN_SPAN_S"]
    assert wait_until(lambda: _stream_has_run_for(app, frozen.id, span), timeout=span + 15)

    response = client.post(
        f"/api/v1/cameras/{frozen.id}/snapshots", json={}, headers=kitchen["inspector_h"]
    )

    assert response.status_code == 201, response.get_json()
    assert _camera_status(frozen.id) is CameraStatus.TAMPERED
    finding = db.session.scalar(select(Finding).where(Finding.centre_id == kitchen["centre"].id))
    assert "画面静止不变" in finding.description
    assert [s.id for s in finding.snapshots] == [response.get_json()["id"]]
    tampered = [d for n, d in seen_events if n == "camera.tampered"]
    assert [(d["camera_id"], d["finding_id"]) for d in tampered] == [(frozen.id, finding.id)]
    assert _operator_alerts("camera.tampered") == [kitchen["operator"].id]


def test_a_live_camera_snapped_twice_in_quick_succession_is_not_flagged(
    app, client, start_fakecam, kitchen, runner, seen_events
):
    _meal_time_all_day(kitchen["centre"])
    # 4 s segments: two snapshots right after a new one appears both come from it.
    feed = start_fakecam(gop=100)
    camera = f.camera(kitchen["centre"], AreaKind.PREP, url=feed.url)
    db.session.commit()
    assert wait_until(lambda: _camera_status(camera.id) is CameraStatus.ONLINE, timeout=20)
    span = app.config["FROZEN_MIN_SPAN_S"]
    assert wait_until(lambda: _stream_has_run_for(app, camera.id, span), timeout=span + 20)
    newest = _newest_segment_name(app, camera.id)
    assert wait_until(lambda: _newest_segment_name(app, camera.id) != newest, timeout=10)

    shots = [
        client.post(
            f"/api/v1/cameras/{camera.id}/snapshots", json={}, headers=kitchen["inspector_h"]
        )
        for _ in range(2)
    ]

    assert [r.status_code for r in shots] == [201, 201]
    # The same picture twice (one segment): what used to be taken for a frozen camera.
    assert shots[0].get_json()["sha256"] == shots[1].get_json()["sha256"]
    assert _camera_status(camera.id) is CameraStatus.ONLINE
    assert db.session.scalars(select(Finding)).all() == []
    assert [n for n, _ in seen_events if n == "camera.tampered"] == []
    assert _operator_alerts("camera.tampered") == []


def test_a_4_2_2_camera_is_transcoded_by_the_runner_to_h264_main(
    app, client, start_fakecam, kitchen, runner
):
    # 8-bit H.264 High 4:2:2: H.264 like the rest, but players decode 4:2:0 only.
    feed = start_fakecam(format="Y42B", width=640, height=360)
    camera = f.camera(kitchen["centre"], AreaKind.PREP, url=feed.url)
    camera.probe = probe_dict(feed.url, read_seconds=1.5)
    db.session.commit()
    assert (camera.probe["codec"], camera.probe["pix_fmt"]) == ("h264", "yuv422p")

    client.post(f"/api/v1/cameras/{camera.id}/watch", headers=kitchen["inspector_h"])

    assert wait_until(lambda: _stream_has_run_for(app, camera.id, 1.0), timeout=20)
    newest = hls.listed_segments(_hls_dir(app, camera.id))[-1]
    video = probe_segment(newest.path)
    assert (video["codec_name"], video["profile"]) == ("h264", "Main")
    assert video["has_b_frames"] == "0"
    assert video["pix_fmt"] == "yuv420p"


# --- snapshots as the web app and the workers take them -----------------------------------------


def _kitchen_url(kitchen) -> str:
    return kitchen["feed"].url_with_credentials("cam", "s3cret")


def test_a_snapshot_comes_from_the_stream_a_media_process_is_writing(app, kitchen):
    camera_id, url = kitchen["camera"].id, _kitchen_url(kitchen)
    # Another process on this machine (`flask bk media`) pulling the camera into HLS_ROOT.
    with Supervisor(app.config["HLS_ROOT"]) as media_node:
        media_node.ensure_running(CameraSource(str(camera_id), url), "test", for_seconds=60)
        assert media_node.wait_for_status(str(camera_id), Status.ONLINE, timeout=15)

        shot = app.extensions["bk_snapshot"](camera_id, url)

    assert shot.source == "segment"  # no second connection to the camera
    assert Image.open(io.BytesIO(shot.jpeg)).size == (1280, 720)


def test_segments_left_by_a_stream_that_stopped_are_not_used(app, kitchen, tmp_path):
    camera_id, url = kitchen["camera"].id, _kitchen_url(kitchen)
    folder = _hls_dir(app, camera_id)
    with Supervisor(app.config["HLS_ROOT"]) as media_node:
        media_node.ensure_running(CameraSource(str(camera_id), url), "test", for_seconds=60)
        assert media_node.wait_for_status(str(camera_id), Status.ONLINE, timeout=15)
        shutil.copytree(folder, tmp_path / "kept")
    shutil.copytree(tmp_path / "kept", folder)  # the folder as the stream left it
    stale = time.time() - 60
    for entry in folder.iterdir():
        os.utime(entry, (stale, stale))

    shot = app.extensions["bk_snapshot"](camera_id, url)

    assert shot.source == "pull"  # an old picture would be evidence of nothing


def test_snapshots_asked_for_at_once_share_one_picture(app, kitchen):
    camera_id, url = kitchen["camera"].id, _kitchen_url(kitchen)
    shoot = app.extensions["bk_snapshot"]
    start = threading.Barrier(4)
    shots = []

    def ask() -> None:
        start.wait()
        shots.append(shoot(camera_id, url))

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(30)

    assert len(shots) == 4
    assert len({(shot.taken_at, shot.sha256) for shot in shots}) == 1  # one pull, shared


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
