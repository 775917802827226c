"""Sweeps generated from the route list, so a new endpoint is covered the day it is added:
anonymous callers are refused everywhere but the few public doors, and no API answer ever
carries a camera's stream credentials."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import AreaKind, CentreStatus, Role
from tests import factories as f

# Doors that are open without a token, and why.
PUBLIC = {
    "/api/v1/openapi.json": "the API description",
    "/api/v1/auth/login": "signing in",
    "/api/v1/auth/refresh": "renewing a session (the refresh token is the credential)",
    "/api/v1/auth/logout": "ending a session (the refresh token is the credential)",
    "/api/v1/auth/wxa": "mini-program sign-in (the wx.login code is the credential)",
}
CAMERA_PASSWORD = "Sup3r-Secret-Cam-Pass"


def _api_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule)
            routes.append((method, path))
    return routes


def test_every_api_endpoint_refuses_anonymous_callers(app, client):
    checked = 0
    for method, path in _api_routes(app):
        if path in PUBLIC:
            continue
        response = client.open(path, method=method, json={})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.get_json()["error"] == "unauthenticated"
        checked += 1
    assert checked > 40  # the sweep really ran over the API


def test_a_forged_token_is_refused_everywhere(app, client):
    headers = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}
    for method, path in _api_routes(app):
        if path in PUBLIC:
            continue
        response = client.open(path, method=method, json={}, headers=headers)
        assert response.status_code == 401, f"{method} {path}"


@pytest.fixture
def staffed_centre(app, client):
    district = f.district()
    agency = f.agency(district)
    centre = f.centre(district, status=CentreStatus.LIVE)
    for kind in (AreaKind.PREP, AreaKind.COOKING):
        f.camera(centre, kind, url=f"rtsp://admin:{CAMERA_PASSWORD}@192.0.2.44:554/ch{kind}")
    people = [
        f.user(Role.ADMIN),
        f.inspector_of(agency),
        f.operator_of(centre),
        f.technician_for(centre),
        f.parent_of(centre),
    ]
    db.session.commit()
    return centre, people


def test_no_api_answer_carries_camera_credentials(app, client, staffed_centre, caplog):
    centre, people = staffed_centre
    seen = 0
    for person in people:
        headers = f.login(client, person.username)
        for method, path in _api_routes(app):
            if method != "GET":
                continue
            response = client.get(path.replace("/1", f"/{centre.id}", 1), headers=headers)
            body = response.get_data(as_text=True)
            assert CAMERA_PASSWORD not in body, f"{path} leaked credentials to {person.role}"
            assert "admin:" not in body
            seen += 1
    assert seen > 50
    assert CAMERA_PASSWORD not in caplog.text
