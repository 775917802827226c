"""Technicians register a centre's cameras by their RTSP addresses, correct them and switch them
off; the address is shown without credentials and the credentials never come back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AreaKind, AuditLog, Camera, CameraStatus, CentreStatus, Role
from app.services.cameras import media_sources, stream_url
from tests import factories as f

PASSWORD = "Hk-7wq!cam"
URL = f"rtsp://admin:{PASSWORD}@192.0.2.31:554/Streaming/Channels/101"


@pytest.fixture
def site(app, client):
    meilan = f.district()
    centre = f.centre(meilan, "快乐成长托管班", status=CentreStatus.INSTALLING)
    other = f.centre(meilan, "明德课后托管", status=CentreStatus.INSTALLING)
    technician = f.technician_for(centre)
    parent = f.parent_of(centre)
    operator = f.operator_of(centre)
    db.session.commit()
    return {
        "centre": centre,
        "other": other,
        "area": {a.kind: a.id for a in centre.areas},
        "tech": f.login(client, technician.username),
        "parent": f.login(client, parent.username),
        "operator": f.login(client, operator.username),
    }


def _register(client, site, headers=None, **body):
    payload = {"area_id": site["area"][AreaKind.COOKING], "rtsp_url": URL, **body}
    return client.post(
        f"/api/v1/centres/{site['centre'].id}/cameras",
        json=payload,
        headers=headers or site["tech"],
    )


def test_a_technician_registers_a_camera_and_sees_its_address_without_credentials(client, site):
    response = _register(client, site, name="操作间灶台")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["name"] == "操作间灶台"
    assert body["area_kind"] == "cooking"
    assert body["status"] == "unknown"
    assert body["address"] == "rtsp://***@192.0.2.31:554/Streaming/Channels/101"
    assert body["enabled"] is True
    assert PASSWORD not in response.get_data(as_text=True)

    camera = db.session.get(Camera, body["id"])
    assert stream_url(camera) == URL  # what the media node pulls
    assert PASSWORD not in camera.rtsp_url_encrypted

    listed = client.get(f"/api/v1/centres/{site['centre'].id}/camera-setup", headers=site["tech"])
    assert [c["address"] for c in listed.get_json()] == [body["address"]]
    # Parents see the room's camera, not where it lives on the network.
    seen = client.get(f"/api/v1/centres/{site['centre'].id}/cameras", headers=site["parent"])
    assert [c["area_name"] for c in seen.get_json()] == ["操作间"]
    assert "192.0.2.31" not in seen.get_data(as_text=True)


def test_a_camera_without_a_name_is_named_after_its_room(client, site):
    assert _register(client, site).get_json()["name"] == "操作间"


def test_a_password_in_the_query_is_hidden_too(client, site):
    url = "rtsp://192.0.2.40:554/cam/realmonitor?channel=1&user=admin&password=Qz81x"
    body = _register(client, site, rtsp_url=url).get_json()
    assert body["address"] == (
        "rtsp://192.0.2.40:554/cam/realmonitor?channel=1&user=admin&password=***"
    )
    assert "Qz81x" not in str([a.detail for a in db.session.scalars(select(AuditLog))])


def test_the_same_stream_cannot_be_registered_for_a_second_room(client, site):
    assert _register(client, site).status_code == 201
    again = _register(
        client,
        site,
        area_id=site["area"][AreaKind.WASHING],
        rtsp_url="rtsp://viewer:other@192.0.2.31:554/Streaming/Channels/101",
    )
    assert again.status_code == 409
    assert again.get_json()["error"] == "conflict"
    assert "操作间" in again.get_json()["message"]
    assert db.session.scalar(select(db.func.count(Camera.id))) == 1
    # Another channel of the same recorder is another stream.
    channel_2 = _register(
        client,
        site,
        area_id=site["area"][AreaKind.WASHING],
        rtsp_url=f"rtsp://admin:{PASSWORD}@192.0.2.31:554/Streaming/Channels/201",
    )
    assert channel_2.status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rtsp_url": "http://192.0.2.31/live"}, "rtsp_url"),
        ({"rtsp_url": "rtsp:///no-host"}, "rtsp_url"),
        ({"rtsp_url": "rtsp://[::1/ch1"}, "rtsp_url"),
        ({"rtsp_url": "rtsp://192.0.2.31:99999/ch1"}, "rtsp_url"),
        ({"rtsp_url": "rtsp://192.0.2.31/" + "x" * 470}, "rtsp_url"),
        ({"area_id": 999_999}, "area_id"),
    ],
)
def test_bad_registrations_are_refused_with_the_field_named(client, site, change, field):
    response = _register(client, site, **change)
    assert response.status_code == 422
    body = response.get_json()
    assert body.get("field") == field or field in body.get("fields", {}), body
    assert db.session.scalar(select(db.func.count(Camera.id))) == 0


def test_a_room_of_another_centre_is_refused(client, site):
    foreign_area = site["other"].areas[0].id
    response = _register(client, site, area_id=foreign_area)
    assert response.status_code == 422
    assert "不属于此托管机构" in response.get_json()["message"]


def test_only_the_assigned_technician_or_an_admin_registers_cameras(client, site):
    for who in ("parent", "operator"):
        refused = _register(client, site, headers=site[who])
        assert refused.status_code == 403, who
    other_tech = f.technician_for(site["other"])
    db.session.commit()
    refused = _register(client, site, headers=f.login(client, other_tech.username))
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "您未被指派到该托管机构"
    admin = f.user(Role.ADMIN)
    db.session.commit()
    assert _register(client, site, headers=f.login(client, admin.username)).status_code == 201
    assert db.session.scalar(select(db.func.count(Camera.id))) == 1


def test_a_new_address_forgets_the_old_probe_and_status(client, site):
    camera_id = _register(client, site).get_json()["id"]
    camera = db.session.get(Camera, camera_id)
    camera.status, camera.probe = CameraStatus.ONLINE, {"reachable": True, "height": 720}
    db.session.commit()

    new_url = f"rtsp://admin:{PASSWORD}@192.0.2.32:554/Streaming/Channels/101"
    response = client.patch(
        f"/api/v1/cameras/{camera_id}",
        json={"rtsp_url": new_url, "area_id": site["area"][AreaKind.PREP]},
        headers=site["tech"],
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["address"] == "rtsp://***@192.0.2.32:554/Streaming/Channels/101"
    assert (body["status"], body["probe"], body["area_kind"]) == ("unknown", None, "prep")
    db.session.expire_all()
    assert stream_url(db.session.get(Camera, camera_id)) == new_url
    entries = db.session.scalars(select(AuditLog).where(AuditLog.action == "camera.updated"))
    assert all(PASSWORD not in str(e.detail) for e in entries)


def test_a_camera_switched_off_leaves_the_media_node(client, site, app):
    camera_id = _register(client, site).get_json()["id"]
    assert [c.id for c, _ in media_sources(None)] == [camera_id]
    off = client.patch(
        f"/api/v1/cameras/{camera_id}", json={"enabled": False}, headers=site["tech"]
    )
    assert off.status_code == 200
    assert off.get_json()["enabled"] is False
    assert media_sources(None) == []


def test_changing_a_camera_checks_the_same_rules(client, site):
    first = _register(client, site).get_json()["id"]
    second = _register(
        client,
        site,
        area_id=site["area"][AreaKind.PREP],
        rtsp_url=f"rtsp://admin:{PASSWORD}@192.0.2.33/live",
    ).get_json()["id"]
    clash = client.patch(f"/api/v1/cameras/{second}", json={"rtsp_url": URL}, headers=site["tech"])
    assert clash.status_code == 409
    missing = client.patch("/api/v1/cameras/999999", json={"name": "x"}, headers=site["tech"])
    assert missing.status_code == 404
    unknown = client.patch(f"/api/v1/cameras/{first}", json={"colour": "red"}, headers=site["tech"])
    assert unknown.status_code == 422
    parent = client.patch(f"/api/v1/cameras/{first}", json={"name": "x"}, headers=site["parent"])
    assert parent.status_code == 403
    assert db.session.get(Camera, first).name == "操作间"
