"""Who may see and act on which centre, through the API as each role uses it."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AgencyKind, AreaKind, Role
from tests import factories as f


@pytest.fixture
def world(app):
    """Two districts of one city: centre A and B in Meilan, C in Longhua."""
    haikou = f.district("海口市")
    meilan = f.district("美兰区", parent=haikou)
    longhua = f.district("龙华区", parent=haikou)
    meilan_market = f.agency(meilan)
    meilan_education = f.agency(meilan, AgencyKind.EDUCATION, prefix="美兰教整")
    city_market = f.agency(haikou, prefix="海口市监整")
    a = f.centre(meilan, "甲中心")
    b = f.centre(meilan, "乙中心")
    c = f.centre(longhua, "丙中心")
    for centre in (a, b, c):
        f.camera(centre)
    w = {
        "a": a,
        "b": b,
        "c": c,
        "parent_a": f.parent_of(a),
        "parent_ab": f.parent_of(a, b),
        "operator_a": f.operator_of(a),
        "inspector_meilan": f.inspector_of(meilan_market),
        "inspector_edu": f.inspector_of(meilan_education),
        "inspector_city": f.inspector_of(city_market),
        "technician_c": f.technician_for(c),
        "admin": f.user(Role.ADMIN),
    }
    db.session.commit()
    return w


def names(client, headers) -> list[str]:
    response = client.get("/api/v1/centres", headers=headers)
    assert response.status_code == 200
    return [c["name"] for c in response.get_json()]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("parent_a", ["甲中心"]),
        ("parent_ab", ["甲中心", "乙中心"]),
        ("operator_a", ["甲中心"]),
        ("inspector_meilan", ["甲中心", "乙中心"]),
        ("inspector_edu", ["甲中心", "乙中心"]),
        ("inspector_city", ["甲中心", "乙中心", "丙中心"]),
        ("technician_c", ["丙中心"]),
        ("admin", ["甲中心", "乙中心", "丙中心"]),
    ],
)
def test_each_role_lists_only_the_centres_in_its_scope(client, world, who, expected):
    assert names(client, f.login(client, world[who].username)) == expected


def test_a_parent_of_centre_a_cannot_read_centre_b(client, world):
    headers = f.login(client, world["parent_a"].username)
    response = client.get(f"/api/v1/centres/{world['b'].id}", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "forbidden",
        "message": "您尚未绑定该托管机构",
        "reason": "scope",
    }
    cameras = client.get(f"/api/v1/centres/{world['b'].id}/cameras", headers=headers)
    assert cameras.status_code == 403


def test_a_parent_reads_their_own_centre(client, world):
    headers = f.login(client, world["parent_a"].username)
    response = client.get(f"/api/v1/centres/{world['a'].id}", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["name"] == "甲中心"


def test_a_parent_sees_only_cameras_in_rooms_shown_to_parents(client, world):
    a = world["a"]
    storage_camera = f.camera(a, AreaKind.STORAGE)
    db.session.commit()
    headers = f.login(client, world["parent_a"].username)
    parent_view = client.get(f"/api/v1/centres/{a.id}/cameras", headers=headers).get_json()
    operator_headers = f.login(client, world["operator_a"].username)
    operator_view = client.get(f"/api/v1/centres/{a.id}/cameras", headers=operator_headers)
    assert storage_camera.id not in [c["id"] for c in parent_view]
    assert storage_camera.id in [c["id"] for c in operator_view.get_json()]


def test_camera_listings_never_carry_the_stream_url_or_credentials(client, world):
    headers = f.login(client, world["operator_a"].username)
    response = client.get(f"/api/v1/centres/{world['a'].id}/cameras", headers=headers)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "rtsp" not in body
    assert "s3cret-pass" not in body


def test_an_operator_of_a_cannot_change_meal_windows_of_b(client, world):
    headers = f.login(client, world["operator_a"].username)
    body = {"windows": [{"label": "午餐", "starts_at": "11:00", "ends_at": "12:30"}]}
    response = client.put(
        f"/api/v1/operator/centres/{world['b'].id}/meal-windows", json=body, headers=headers
    )
    assert response.status_code == 403
    assert response.get_json()["message"] == "这不是您经营的托管机构"
    db.session.expire_all()
    assert [w.label for w in world["b"].meal_windows] == ["午餐"]
    assert world["b"].meal_windows[0].starts_at.hour == 11
    assert world["b"].meal_windows[0].starts_at.minute == 30


def test_an_operator_replaces_their_own_meal_windows(client, world):
    headers = f.login(client, world["operator_a"].username)
    body = {
        "windows": [
            {"label": "午餐", "starts_at": "11:00", "ends_at": "12:30"},
            {"label": "晚餐", "starts_at": "17:30", "ends_at": "18:30", "weekday": 4},
        ]
    }
    response = client.put(
        f"/api/v1/operator/centres/{world['a'].id}/meal-windows", json=body, headers=headers
    )
    assert response.status_code == 200
    assert response.get_json()["meal_windows"] == [
        {"label": "午餐", "weekday": None, "starts_at": "11:00", "ends_at": "12:30"},
        {"label": "晚餐", "weekday": 4, "starts_at": "17:30", "ends_at": "18:30"},
    ]


def test_overlapping_meal_windows_are_refused_and_nothing_changes(client, world):
    headers = f.login(client, world["operator_a"].username)
    body = {
        "windows": [
            {"label": "午餐", "starts_at": "11:00", "ends_at": "12:30"},
            {"label": "点心", "starts_at": "12:00", "ends_at": "13:00"},
        ]
    }
    response = client.put(
        f"/api/v1/operator/centres/{world['a'].id}/meal-windows", json=body, headers=headers
    )
    assert response.status_code == 422
    assert response.get_json()["message"] == "“午餐”与“点心”时间重叠"
    db.session.expire_all()
    assert [w.label for w in world["a"].meal_windows] == ["午餐"]


def test_an_inspector_outside_the_jurisdiction_is_refused(client, world):
    headers = f.login(client, world["inspector_meilan"].username)
    response = client.get(f"/api/v1/centres/{world['c'].id}", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["message"] == "该托管机构不在您单位的辖区内"


def test_a_city_agency_reaches_centres_of_its_districts(client, world):
    headers = f.login(client, world["inspector_city"].username)
    assert client.get(f"/api/v1/centres/{world['c'].id}", headers=headers).status_code == 200


def test_a_parent_cannot_use_operator_actions_even_on_their_own_centre(client, world):
    headers = f.login(client, world["parent_a"].username)
    body = {"windows": []}
    response = client.put(
        f"/api/v1/operator/centres/{world['a'].id}/meal-windows", json=body, headers=headers
    )
    assert response.status_code == 403
    assert response.get_json()["reason"] == "role"


def test_an_unknown_centre_is_404_not_403(client, world):
    headers = f.login(client, world["admin"].username)
    response = client.get("/api/v1/centres/99999", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
