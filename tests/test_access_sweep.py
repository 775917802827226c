"""Sweeps generated from the route list, so a new endpoint is covered the day it is added:
anonymous callers are refused everywhere but the few public doors, and no API answer ever
carries a camera's stream credentials."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import jwt
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
    "/api/v1/auth/wechat": "official-account web sign-in (WeChat's code is the credential)",
    "/api/v1/auth/wechat/authorize": "where to send WeChat's browser to sign in",
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


def _token(app, user, *, key: str | None = None, age: timedelta = timedelta(0), alg="HS256"):
    issued = datetime.now(UTC) - age
    claims = {
        "sub": str(user.id),
        "role": user.role.value,
        "iss": app.config["JWT_ISSUER"],
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=app.config["ACCESS_TOKEN_TTL_S"]),
        "jti": "sweep",
        "typ": "access",
    }
    if alg == "none":
        claims = {
            k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()
        }
        return ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
    return jwt.encode(claims, key or app.config["SECRET_KEY"], algorithm=alg)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "forgery",
    ["alg none", "another key", "expired", "garbage"],
)
def test_a_forged_or_expired_token_is_refused_everywhere(app, client, forgery):
    admin = f.user(Role.ADMIN)
    db.session.commit()
    token = {
        "alg none": lambda: _token(app, admin, alg="none"),
        "another key": lambda: _token(app, admin, key="not-the-server-key-" + "k" * 32),
        "expired": lambda: _token(app, admin, age=timedelta(hours=2)),
        "garbage": lambda: "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
    }[forgery]()
    # The control: the same crafting with the server's key, now, is let in.
    control = _token(app, admin)
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {control}"}).status_code
        == 200
    )
    checked = 0
    for method, path in _api_routes(app):
        if path in PUBLIC:
            continue
        response = client.open(
            path, method=method, json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, f"{method} {path}"
        checked += 1
    assert checked > 40


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
