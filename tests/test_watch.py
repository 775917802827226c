"""Who may watch which camera when (POST /cameras/<id>/watch) and the signed HLS files."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import (
    AreaKind,
    CameraStatus,
    CentreStatus,
    MealWindow,
    PatrolMode,
    WatchSession,
)
from app.services import patrols, watch
from app.services.centres import CENTRE_TZ, current_meal_window
from tests import factories as f

PLAYLIST = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg_1.ts\n"


def _local_now() -> dt.datetime:
    return dt.datetime.now(CENTRE_TZ)


def window_around_now(centre) -> None:
    now = _local_now()
    start = max(
        dt.datetime.combine(now.date(), dt.time(0, 0), CENTRE_TZ), now - dt.timedelta(hours=1)
    )
    end = min(
        dt.datetime.combine(now.date(), dt.time(23, 59, 59), CENTRE_TZ), now + dt.timedelta(hours=1)
    )
    centre.meal_windows.clear()
    db.session.flush()
    db.session.add(
        MealWindow(centre_id=centre.id, label="午餐", starts_at=start.time(), ends_at=end.time())
    )


def window_away_from_now(centre) -> None:
    now = _local_now()
    if now.hour >= 2:
        start, end = dt.time(0, 0), (now - dt.timedelta(hours=1)).time()
    else:
        start, end = (now + dt.timedelta(hours=1)).time(), dt.time(23, 59, 59)
    centre.meal_windows.clear()
    db.session.flush()
    db.session.add(MealWindow(centre_id=centre.id, label="午餐", starts_at=start, ends_at=end))


@pytest.fixture
def world(app, client):
    meilan = f.district("美兰区")
    longhua = f.district("龙华区")
    agency = f.agency(meilan)
    a = f.centre(meilan, "甲中心")
    b = f.centre(meilan, "乙中心")
    c = f.centre(longhua, "丙中心")
    window_around_now(a)
    window_around_now(b)
    cams = {
        "a_cooking": f.camera(a, AreaKind.COOKING),
        "a_storage": f.camera(a, AreaKind.STORAGE),
        "b_cooking": f.camera(b, AreaKind.COOKING),
        "c_cooking": f.camera(c, AreaKind.COOKING),
    }
    people = {
        "parent": f.parent_of(a),
        "operator": f.operator_of(a),
        "inspector": f.inspector_of(agency),
        "technician": f.technician_for(c),
    }
    db.session.commit()
    headers = {k: f.login(client, v.username) for k, v in people.items()}
    return {"a": a, "b": b, "c": c, "cams": cams, "people": people, "h": headers}


def post_watch(client, world, who, cam):
    return client.post(f"/api/v1/cameras/{world['cams'][cam].id}/watch", headers=world["h"][who])


def test_a_parent_watches_a_shown_room_of_their_centre_during_a_meal_window(client, world):
    response = post_watch(client, world, "parent", "a_cooking")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    camera_id = world["cams"]["a_cooking"].id
    assert body["url"].startswith("/hls/") and body["url"].endswith(f"/{camera_id}/index.m3u8")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(0) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=300)


def test_the_watch_reply_says_the_camera_is_offline_and_when_its_last_picture_came(client, world):
    camera = world["cams"]["a_cooking"]
    last_picture = dt.datetime(2026, 5, 12, 3, 42, 7, tzinfo=dt.UTC)
    camera.status, camera.last_frame_at = CameraStatus.OFFLINE, last_picture
    db.session.commit()
    body = post_watch(client, world, "parent", "a_cooking").get_json()
    assert body["status"] == "offline"
    assert dt.datetime.fromisoformat(body["last_frame_at"]) == last_picture


@pytest.mark.parametrize(
    ("who", "cam", "reason"),
    [
        ("parent", "b_cooking", "scope"),  # not their centre
        ("parent", "a_storage", "room_not_shown"),
        ("operator", "b_cooking", "scope"),
        ("inspector", "c_cooking", "scope"),  # outside the jurisdiction
        ("technician", "a_cooking", "scope"),  # not assigned
    ],
)
def test_watching_outside_ones_scope_is_refused_with_the_reason(client, world, who, cam, reason):
    response = post_watch(client, world, who, cam)
    assert response.status_code == 403
    assert response.get_json()["reason"] == reason
    assert response.get_json()["message"]


def test_a_parent_outside_the_meal_window_is_told_when_it_opens(client, world):
    window_away_from_now(world["a"])
    db.session.commit()
    response = post_watch(client, world, "parent", "a_cooking")
    assert response.status_code == 403
    body = response.get_json()
    assert body["reason"] == "outside_meal_window"
    assert "午餐" in body["message"]


def test_staff_watch_outside_meal_windows(client, world):
    window_away_from_now(world["a"])
    db.session.commit()
    assert post_watch(client, world, "operator", "a_storage").status_code == 200
    assert post_watch(client, world, "inspector", "a_storage").status_code == 200


def test_a_suspended_centre_stops_parents_live_view_with_a_clear_message(client, world):
    world["a"].status = CentreStatus.SUSPENDED
    world["a"].suspension_reason = "后厨整改期间暂停直播"
    db.session.commit()
    response = post_watch(client, world, "parent", "a_cooking")
    assert response.status_code == 403
    assert response.get_json()["message"] == "该机构直播已暂停：后厨整改期间暂停直播"
    assert post_watch(client, world, "inspector", "a_cooking").status_code == 200


def test_every_watch_is_recorded_and_a_refresh_extends_the_same_session(client, world):
    post_watch(client, world, "parent", "a_cooking")
    post_watch(client, world, "parent", "a_cooking")
    sessions = db.session.scalars(select(WatchSession)).all()
    assert len(sessions) == 1
    session = sessions[0]
    assert session.user_id == world["people"]["parent"].id
    assert session.camera_id == world["cams"]["a_cooking"].id
    assert session.ended_at > session.started_at
    assert watch.cameras_in_demand() == {world["cams"]["a_cooking"].id}


def test_an_unknown_camera_is_404(client, world):
    response = client.post("/api/v1/cameras/99999/watch", headers=world["h"]["inspector"])
    assert response.status_code == 404


# --- what keeps a camera's stream running (read by the media runner) ---------------------------


def demand_of(world, *cams: str) -> dict[str, list[watch.StreamDemand]]:
    """stream_demand for the named cameras, by name (cameras with no demand left out)."""
    names = {world["cams"][cam].id: cam for cam in cams}
    found: dict[str, list[watch.StreamDemand]] = {}
    for demand in watch.stream_demand(set(names)):
        found.setdefault(names[demand.camera_id], []).append(demand)
    return found


def test_rooms_parents_see_are_kept_warm_through_the_meal_window(world):
    demand = demand_of(world, "a_cooking", "b_cooking")

    window = current_meal_window(world["a"], dt.datetime.now(dt.UTC))
    assert [(d.key, d.viewer, d.until) for d in demand["a_cooking"]] == [
        ("meal", False, window.ends_at)
    ]
    assert [d.key for d in demand["b_cooking"]] == ["meal"]


def test_nothing_is_kept_warm_outside_the_meal_window(world):
    window_away_from_now(world["a"])
    db.session.commit()

    assert demand_of(world, "a_cooking", "a_storage") == {}


def test_a_room_not_shown_to_parents_is_not_kept_warm_in_the_meal_window(world):
    assert demand_of(world, "a_storage") == {}


@pytest.mark.parametrize(
    "status", [CentreStatus.COMMISSIONING, CentreStatus.SUSPENDED, CentreStatus.INSTALLING]
)
def test_a_centre_that_is_not_live_is_not_kept_warm(world, status):
    world["a"].status = status
    db.session.commit()

    assert demand_of(world, "a_cooking") == {}


def test_an_open_patrol_keeps_every_camera_of_its_centre_running_until_it_ends(world):
    window_away_from_now(world["a"])  # no meal window: only the patrol asks for the streams
    db.session.commit()
    inspector = world["people"]["inspector"]
    patrol = patrols.start_patrol(inspector, world["a"].id, PatrolMode.REMOTE)

    demand = demand_of(world, "a_cooking", "a_storage", "b_cooking")
    now = dt.datetime.now(dt.UTC)
    patrolled = {cam for cam, found in demand.items() if any(d.key == "patrol" for d in found)}
    assert patrolled == {"a_cooking", "a_storage"}  # the storage room too; not centre b
    for cam in ("a_cooking", "a_storage"):
        [running] = demand[cam]
        assert (running.key, running.viewer) == ("patrol", False)
        assert now < running.until <= now + watch.PATROL_WARM

    patrols.end_patrol(inspector, patrol.id)
    assert demand_of(world, "a_cooking", "a_storage") == {}


def test_a_viewers_lease_is_demand_until_it_runs_out(client, world):
    window_away_from_now(world["a"])
    db.session.commit()
    post_watch(client, world, "operator", "a_storage")
    session = db.session.scalars(select(WatchSession)).one()

    [lease] = demand_of(world, "a_storage")["a_storage"]
    assert (lease.key, lease.viewer) == (f"watch:{session.id}", True)
    assert lease.until == session.ended_at


# --- the signed HLS files ----------------------------------------------------------------------


@pytest.fixture
def stream_files(app, world):
    camera_id = world["cams"]["a_cooking"].id
    folder = Path(app.config["HLS_ROOT"]) / str(camera_id)
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text(PLAYLIST)
    (folder / "seg_1.ts").write_bytes(b"\x47" * 188)
    secret = Path(app.config["HLS_ROOT"]) / "secret.txt"
    secret.write_text("not for you")
    return camera_id


def test_the_signed_playlist_and_its_segments_are_served(client, world, stream_files):
    url = post_watch(client, world, "parent", "a_cooking").get_json()["url"]
    playlist = client.get(url, buffered=True)
    assert playlist.status_code == 200
    assert playlist.headers["Cache-Control"] == "no-store"
    assert playlist.mimetype == "application/vnd.apple.mpegurl"
    assert playlist.get_data(as_text=True) == PLAYLIST
    segment = client.get(url.replace("index.m3u8", "seg_1.ts"), buffered=True)
    assert segment.status_code == 200
    assert "max-age=60" in segment.headers["Cache-Control"]
    assert segment.data == b"\x47" * 188


def test_a_forged_or_expired_token_is_refused(app, client, world, stream_files):
    key = app.config["HLS_SIGNING_KEY"]
    past = int(time.time()) - 1
    expired = watch.token_for(stream_files, past, key)
    response = client.get(f"/hls/{expired}/{stream_files}/index.m3u8")
    assert response.status_code == 403
    assert response.get_json()["reason"] == "token_expired"
    future = int(time.time()) + 300
    forged = watch.token_for(stream_files, future, "guessed-key")
    assert client.get(f"/hls/{forged}/{stream_files}/index.m3u8").status_code == 403
    garbage = client.get(f"/hls/12345-abc/{stream_files}/index.m3u8")
    assert garbage.status_code == 403


def test_a_token_for_one_camera_does_not_open_another(app, client, world, stream_files):
    url = post_watch(client, world, "parent", "a_cooking").get_json()["url"]
    other = world["cams"]["b_cooking"].id
    response = client.get(url.replace(f"/{stream_files}/", f"/{other}/"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "..%2Fsecret.txt",
        "..%2F..%2Fsecret.txt",
        "%2e%2e%2fsecret.txt",
        "secret.txt",
        "index.m3u8.bak",
    ],
)
def test_path_traversal_is_refused(client, world, stream_files, path):
    url = post_watch(client, world, "parent", "a_cooking").get_json()["url"]
    response = client.get(url.replace("index.m3u8", path))
    assert response.status_code == 404
    assert b"not for you" not in response.data


def _suspend(client, world, reason="后厨整改期间暂停直播"):
    response = client.post(
        f"/api/v1/centres/{world['a'].id}/suspension",
        json={"reason": reason},
        headers=world["h"]["inspector"],
    )
    assert response.status_code == 200, response.get_json()


def test_a_parents_url_stops_playing_the_moment_the_centre_is_suspended(
    client, world, stream_files
):
    url = post_watch(client, world, "parent", "a_cooking").get_json()["url"]
    assert client.get(url, buffered=True).status_code == 200  # remembered as not suspended
    _suspend(client, world)
    for name in ("index.m3u8", "seg_1.ts"):
        refused = client.get(url.replace("index.m3u8", name))
        assert refused.status_code == 403
        assert refused.get_json()["message"] == "该机构直播已暂停：后厨整改期间暂停直播"
        assert refused.get_json()["reason"] == "centre_suspended"
    client.delete(f"/api/v1/centres/{world['a'].id}/suspension", headers=world["h"]["inspector"])
    assert client.get(url, buffered=True).status_code == 200


def test_staff_go_on_watching_a_suspended_centre(client, world, stream_files):
    parent_url = post_watch(client, world, "parent", "a_cooking").get_json()["url"]
    _suspend(client, world)
    assert client.get(parent_url).status_code == 403  # remembered now as suspended
    url = post_watch(client, world, "inspector", "a_cooking").get_json()["url"]
    playlist = client.get(url, buffered=True)
    assert playlist.status_code == 200
    assert playlist.get_data(as_text=True) == PLAYLIST
