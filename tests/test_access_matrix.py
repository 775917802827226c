"""Who may do what, for every route of the app: each endpoint is called by every kind of caller
against centre A's objects, and the answer must be the rule's allow or deny.

The rules below are the specification. The route list is read from the app, so a route added
without a rule here fails `test_every_route_has_a_rule` until someone decides who may call it.

Callers: anonymous; the parent, the operator and the technician of centre A; the parent and the
operator of centre B (another district); an inspector whose agency has jurisdiction over A and
one whose agency has not; an admin. A denial is 401, 403 or 404 (objects out of scope are not
revealed); anything else — 200, 201, 409 for a state that no longer allows it, 422, 502 for an
unreachable camera — means the caller got past the access checks. A 500 fails everywhere.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import pytest
from PIL import Image

from app.extensions import db
from app.models import (
    AreaKind,
    CentreStatus,
    Commissioning,
    Role,
    SnapshotReason,
)
from app.services import snapshots as snapshot_service
from app.services.auth import issue_access_token
from app.services.onboarding import active_standard
from media import snapshot as media_snapshot
from tests import factories as f

CALLERS = (
    "anonymous",
    "parent_a",
    "parent_b",
    "operator_a",
    "operator_b",
    "inspector_in",
    "inspector_out",
    "technician",
    "admin",
)
SIGNED_IN = frozenset(CALLERS) - {"anonymous"}
STAFF_OF_A = frozenset({"operator_a", "inspector_in", "technician", "admin"})
READERS_OF_A = STAFF_OF_A | {"parent_a"}
PARENTS = frozenset({"parent_a", "parent_b"})
OPERATORS = frozenset({"operator_a", "operator_b"})
INSPECTORS = frozenset({"inspector_in", "inspector_out"})
INSTALLERS_OF_A = frozenset({"technician", "admin"})
DENIED = {401, 403, 404}


def _jpeg(shade: int = 0) -> bytes:
    image = Image.new("RGB", (64, 48))
    image.putdata([((x * 4 + shade) % 256, y * 5 % 256, 128) for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


PHOTO = ("photo.jpg", _jpeg(7))


@dataclass
class World:
    ids: dict[str, int]
    tokens: dict[str, str]

    def __getitem__(self, key: str) -> int:
        return self.ids[key]


Request = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    path: str  # the route with its ids filled from the world, e.g. "/api/v1/centres/{centre_a}"
    body: Request | None = None


_seq = itertools.count(1)


def _multipart(**fields: Any) -> Request:
    def build(w: World) -> dict[str, Any]:
        data = {k: (v(w) if callable(v) else v) for k, v in fields.items()}
        data["photos"] = (io.BytesIO(PHOTO[1]), PHOTO[0])
        return {"data": data, "content_type": "multipart/form-data"}

    return build


def _json(**fields: Any) -> Request:
    return lambda w: {"json": {k: (v(w) if callable(v) else v) for k, v in fields.items()}}


def _id(key: str) -> Callable[[World], int]:
    return lambda w: w[key]


API = "/api/v1"

RULES: dict[tuple[str, str], Rule] = {
    # --- signed in, any role --------------------------------------------------------------
    ("GET", "/api/v1/auth/me"): Rule(SIGNED_IN, f"{API}/auth/me"),
    ("GET", "/api/v1/centres"): Rule(SIGNED_IN, f"{API}/centres"),
    ("GET", "/api/v1/centres/<int:centre_id>"): Rule(READERS_OF_A, f"{API}/centres/{{centre_a}}"),
    ("GET", "/api/v1/centres/<int:centre_id>/cameras"): Rule(
        READERS_OF_A, f"{API}/centres/{{centre_a}}/cameras"
    ),
    ("GET", "/api/v1/centres/<int:centre_id>/record"): Rule(
        READERS_OF_A, f"{API}/centres/{{centre_a}}/record"
    ),
    ("POST", "/api/v1/cameras/<int:camera_id>/watch"): Rule(
        READERS_OF_A, f"{API}/cameras/{{camera_a}}/watch"
    ),
    ("POST", "/api/v1/cameras/<int:camera_id>/snapshots"): Rule(
        STAFF_OF_A, f"{API}/cameras/{{camera_a}}/snapshots", _json()
    ),
    ("GET", "/api/v1/snapshots/<int:snapshot_id>/image"): Rule(
        READERS_OF_A, f"{API}/snapshots/{{snapshot_a}}/image"
    ),
    # --- parents ---------------------------------------------------------------------------
    ("GET", "/api/v1/parent/me"): Rule(PARENTS, f"{API}/parent/me"),
    ("PATCH", "/api/v1/parent/me"): Rule(PARENTS, f"{API}/parent/me", _json(phone="13800138000")),
    ("POST", "/api/v1/parent/bind"): Rule(
        PARENTS, f"{API}/parent/bind", lambda w: {"json": {"code": w.tokens["invite_code"]}}
    ),
    ("GET", "/api/v1/parent/centres"): Rule(PARENTS, f"{API}/parent/centres"),
    ("GET", "/api/v1/parent/centres/<int:centre_id>"): Rule(
        {"parent_a"}, f"{API}/parent/centres/{{centre_a}}"
    ),
    ("DELETE", "/api/v1/parent/centres/<int:centre_id>"): Rule(
        {"parent_a"}, f"{API}/parent/centres/{{centre_a}}"
    ),
    ("POST", "/api/v1/parent/concerns"): Rule(
        {"parent_a"},
        f"{API}/parent/concerns",
        _multipart(
            centre_id=_id("centre_a"),
            text="后厨地面有积水",
            client_key=lambda w: f"matrix-{next(_seq)}",
        ),
    ),
    ("GET", "/api/v1/parent/concerns"): Rule(PARENTS, f"{API}/parent/concerns"),
    ("GET", "/api/v1/parent/concerns/<int:concern_id>"): Rule(
        {"parent_a"}, f"{API}/parent/concerns/{{concern_a}}"
    ),
    ("GET", "/api/v1/parent/concerns/<int:concern_id>/photos/<int:photo_id>"): Rule(
        {"parent_a"}, f"{API}/parent/concerns/{{concern_a}}/photos/{{concern_photo_a}}"
    ),
    # --- concerns, staff side --------------------------------------------------------------
    ("GET", "/api/v1/concerns"): Rule(OPERATORS | INSPECTORS | {"admin"}, f"{API}/concerns"),
    ("GET", "/api/v1/concerns/<int:concern_id>"): Rule(
        {"operator_a", "inspector_in", "admin"}, f"{API}/concerns/{{concern_a}}"
    ),
    ("GET", "/api/v1/concerns/<int:concern_id>/photos/<int:photo_id>"): Rule(
        {"inspector_in", "admin"}, f"{API}/concerns/{{concern_a}}/photos/{{concern_photo_a}}"
    ),
    ("POST", "/api/v1/inspector/concerns/<int:concern_id>/accept"): Rule(
        {"inspector_in"}, f"{API}/inspector/concerns/{{concern_a}}/accept", _json()
    ),
    ("POST", "/api/v1/inspector/concerns/<int:concern_id>/dismiss"): Rule(
        {"inspector_in"},
        f"{API}/inspector/concerns/{{concern_a}}/dismiss",
        _json(reason="与后厨无关"),
    ),
    ("POST", "/api/v1/inspector/concerns/<int:concern_id>/resolve"): Rule(
        {"inspector_in"},
        f"{API}/inspector/concerns/{{concern_a}}/resolve",
        _json(answer="已现场核实并整改"),
    ),
    # --- operators -------------------------------------------------------------------------
    ("PUT", "/api/v1/operator/centres/<int:centre_id>/meal-windows"): Rule(
        {"operator_a", "admin"},
        f"{API}/operator/centres/{{centre_a}}/meal-windows",
        _json(windows=[{"label": "午餐", "starts_at": "11:30", "ends_at": "13:00"}]),
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/invite-codes"): Rule(
        {"operator_a", "admin"}, f"{API}/centres/{{centre_a}}/invite-codes", _json()
    ),
    ("GET", "/api/v1/centres/<int:centre_id>/invite-codes"): Rule(
        {"operator_a", "admin"}, f"{API}/centres/{{centre_a}}/invite-codes"
    ),
    ("POST", "/api/v1/invite-codes/<int:code_id>/revoke"): Rule(
        {"operator_a", "admin"}, f"{API}/invite-codes/{{spare_code_a}}/revoke"
    ),
    # --- notices ---------------------------------------------------------------------------
    ("GET", "/api/v1/notices"): Rule(OPERATORS | INSPECTORS | {"admin"}, f"{API}/notices"),
    ("GET", "/api/v1/notices/<int:notice_id>"): Rule(
        {"operator_a", "inspector_in", "admin"}, f"{API}/notices/{{notice_a}}"
    ),
    ("GET", "/api/v1/notices/<int:notice_id>/notice.pdf"): Rule(
        {"operator_a", "inspector_in", "admin"}, f"{API}/notices/{{notice_a}}/notice.pdf"
    ),
    ("GET", "/api/v1/notices/<int:notice_id>/photos/<int:photo_id>"): Rule(
        {"operator_a", "inspector_in", "admin"},
        f"{API}/notices/{{answered_a}}/photos/{{response_photo_a}}",
    ),
    ("POST", "/api/v1/notices/<int:notice_id>/acknowledge"): Rule(
        {"operator_a"}, f"{API}/notices/{{notice_a}}/acknowledge"
    ),
    ("POST", "/api/v1/notices/<int:notice_id>/responses"): Rule(
        {"operator_a"}, f"{API}/notices/{{notice_a}}/responses", _multipart(text="已整改")
    ),
    ("POST", "/api/v1/inspector/notices"): Rule(
        {"inspector_in"},
        f"{API}/inspector/notices",
        _json(
            centre_id=_id("centre_a"),
            finding_ids=lambda w: [w["finding_a"]],
            requirements="清理积水",
            working_days=3,
        ),
    ),
    ("POST", "/api/v1/inspector/notices/<int:notice_id>/issue"): Rule(
        {"inspector_in"}, f"{API}/inspector/notices/{{draft_a}}/issue"
    ),
    ("POST", "/api/v1/inspector/notices/<int:notice_id>/withdraw"): Rule(
        {"inspector_in"}, f"{API}/inspector/notices/{{notice_a}}/withdraw", _json(reason="误发")
    ),
    ("POST", "/api/v1/inspector/notices/<int:notice_id>/verify"): Rule(
        {"inspector_in"}, f"{API}/inspector/notices/{{notice_a}}/verify", _json(mode="live_video")
    ),
    ("POST", "/api/v1/inspector/notices/<int:notice_id>/return"): Rule(
        {"inspector_in"},
        f"{API}/inspector/notices/{{notice_a}}/return",
        _json(mode="live_video", reason="照片不清楚"),
    ),
    ("POST", "/api/v1/inspector/notices/<int:notice_id>/follow-ups"): Rule(
        {"inspector_in"},
        f"{API}/inspector/notices/{{notice_a}}/follow-ups",
        _json(
            kind="phone",
            happened_at="2026-03-02T10:00:00+08:00",
            contact="王店长",
            outcome="已催促",
        ),
    ),
    # --- patrols ---------------------------------------------------------------------------
    ("POST", "/api/v1/inspector/patrols"): Rule(
        {"inspector_in"},
        f"{API}/inspector/patrols",
        _json(centre_id=_id("centre_a"), mode="remote"),
    ),
    ("GET", "/api/v1/inspector/patrols/<int:patrol_id>"): Rule(
        {"inspector_in", "admin"}, f"{API}/inspector/patrols/{{patrol_a}}"
    ),
    ("PUT", "/api/v1/inspector/patrols/<int:patrol_id>/areas/<int:area_id>"): Rule(
        {"inspector_in"},
        f"{API}/inspector/patrols/{{patrol_a}}/areas/{{area_a}}",
        _json(result="ok"),
    ),
    ("POST", "/api/v1/inspector/patrols/<int:patrol_id>/findings"): Rule(
        {"inspector_in"},
        f"{API}/inspector/patrols/{{patrol_a}}/findings",
        _json(category="hygiene", severity="III", description="台面有油污"),
    ),
    ("POST", "/api/v1/inspector/patrols/<int:patrol_id>/end"): Rule(
        {"inspector_in"}, f"{API}/inspector/patrols/{{patrol_a}}/end", _json()
    ),
    ("GET", "/api/v1/inspector/patrols/<int:patrol_id>/record.pdf"): Rule(
        {"inspector_in", "admin"}, f"{API}/inspector/patrols/{{patrol_a}}/record.pdf"
    ),
    ("GET", "/api/v1/inspector/centres/<int:centre_id>/patrols"): Rule(
        {"inspector_in", "admin"}, f"{API}/inspector/centres/{{centre_a}}/patrols"
    ),
    ("GET", "/api/v1/dashboard"): Rule(INSPECTORS | {"admin"}, f"{API}/dashboard"),
    ("GET", "/api/v1/coverage"): Rule(INSPECTORS | {"admin"}, f"{API}/coverage"),
    # --- onboarding and commissioning ------------------------------------------------------
    ("POST", "/api/v1/centres/invitations"): Rule(
        {"inspector_in", "admin"},
        f"{API}/centres/invitations",
        _json(name=lambda w: f"新托管班{next(_seq)}", district_id=_id("district_a")),
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/installation"): Rule(
        {"operator_a", "technician", "admin"}, f"{API}/centres/{{centre_a}}/installation"
    ),
    ("GET", "/api/v1/centres/<int:centre_id>/camera-setup"): Rule(
        INSTALLERS_OF_A, f"{API}/centres/{{centre_a}}/camera-setup"
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/cameras"): Rule(
        INSTALLERS_OF_A,
        f"{API}/centres/{{centre_a}}/cameras",
        _json(
            area_id=_id("area_a"),
            rtsp_url=lambda w: f"rtsp://u:p@192.0.2.77:554/ch{next(_seq)}",
        ),
    ),
    ("PATCH", "/api/v1/cameras/<int:camera_id>"): Rule(
        INSTALLERS_OF_A, f"{API}/cameras/{{camera_a}}", _json(name="操作间一号")
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/commissioning"): Rule(
        INSTALLERS_OF_A, f"{API}/centres/{{centre_a}}/commissioning"
    ),
    ("GET", "/api/v1/centres/<int:centre_id>/checklist"): Rule(
        STAFF_OF_A, f"{API}/centres/{{centre_a}}/checklist"
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/checklist/automatic"): Rule(
        INSTALLERS_OF_A, f"{API}/centres/{{centre_a}}/checklist/automatic"
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/checklist/items/<int:item_id>"): Rule(
        INSTALLERS_OF_A,
        f"{API}/centres/{{centre_a}}/checklist/items/{{manual_item}}",
        _multipart(note="已张贴"),
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/sign-off"): Rule(
        INSTALLERS_OF_A, f"{API}/centres/{{centre_a}}/sign-off"
    ),
    ("POST", "/api/v1/centres/<int:centre_id>/suspension"): Rule(
        {"inspector_in", "admin"}, f"{API}/centres/{{centre_a}}/suspension", _json(reason="检查")
    ),
    ("DELETE", "/api/v1/centres/<int:centre_id>/suspension"): Rule(
        {"inspector_in", "admin"}, f"{API}/centres/{{centre_a}}/suspension"
    ),
    ("GET", "/api/v1/centres/<int:centre_id>/history"): Rule(
        {"inspector_in", "technician", "admin"}, f"{API}/centres/{{centre_a}}/history"
    ),
    # --- admin -----------------------------------------------------------------------------
    ("GET", "/api/v1/admin/checklist-standard"): Rule({"admin"}, f"{API}/admin/checklist-standard"),
    ("POST", "/api/v1/admin/checklist-standards"): Rule(
        {"admin"},
        f"{API}/admin/checklist-standards",
        _json(
            version=lambda w: f"matrix-{next(_seq)}",
            title="检查规范",
            items=[
                {
                    "code": "signage",
                    "title": "张贴温馨提示",
                    "kind": "manual",
                    "rule": {"evidence": "photo"},
                }
            ],
        ),
    ),
    ("PUT", "/api/v1/admin/calendar/<int:year>"): Rule(
        {"admin"}, f"{API}/admin/calendar/2031", _json(holidays=["2031-01-01"], workdays=[])
    ),
}

# Routes open without a bearer token, each with what guards it instead.
PUBLIC: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "username and password",
    ("POST", "/api/v1/auth/refresh"): "the refresh token",
    ("POST", "/api/v1/auth/logout"): "the refresh token",
    ("POST", "/api/v1/auth/wxa"): "the mini-program's wx.login code",
    ("POST", "/api/v1/auth/wechat"): "the code of WeChat's web authorisation",
    ("GET", "/api/v1/auth/wechat/authorize"): "nothing: it only names WeChat's page",
    ("GET", "/api/v1/openapi.json"): "nothing: the API description",
    ("GET", "/"): "nothing: the web app's shell",
    ("GET", "/bind"): "nothing: the invite-code landing page (binding needs a sign-in)",
    ("GET", "/assets/<path:filename>"): "nothing: the web app's scripts and styles",
    ("GET", "/static/<path:filename>"): "nothing: Flask's static folder",
    ("GET", "/healthz"): "nothing: liveness for the load balancer",
    ("GET", "/metrics"): "loopback only, or the METRICS_TOKEN bearer from other hosts",
    ("GET", "/hls/<token>/<int:camera_id>/<filename>"): "the signed, expiring URL token",
    ("GET", "/wechat/callback"): "the WeChat signature",
    ("POST", "/wechat/callback"): "the WeChat signature",
    ("GET", "/wecom/callback"): "the WeCom signature",
    ("POST", "/wecom/callback"): "the WeCom signature",
}


def _routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_has_a_rule(app):
    routes = _routes(app)
    missing = routes - set(RULES) - set(PUBLIC)
    assert not missing, f"routes without an access rule: {sorted(missing)}"
    stale = (set(RULES) | set(PUBLIC)) - routes
    assert not stale, f"rules for routes that no longer exist: {sorted(stale)}"
    assert not set(RULES) & set(PUBLIC)


def _shooter(camera_id: int, url: str) -> media_snapshot.Snapshot:
    """Stands in for the camera when the world is built (the media tests use real ones)."""
    jpeg = _jpeg(camera_id)
    return media_snapshot.Snapshot(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        taken_at=datetime.now(UTC),
        source="pull",
    )


def _ok(response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def world(app, client) -> World:
    district_a, district_b = f.district("美兰区"), f.district("龙华区")
    agency_in = f.agency(district_a)
    agency_out = f.agency(district_b, prefix="龙华市监整")
    centre_a = f.centre(district_a, "阳光小树苗托管中心", status=CentreStatus.LIVE)
    centre_b = f.centre(district_b, "明德课后托管", status=CentreStatus.LIVE)
    # Open all day, so what decides a parent's watch here is who they are, not the time.
    for window in centre_a.meal_windows:
        window.starts_at, window.ends_at = time(0, 0), time(23, 59, 59)
    # An address that refuses at once: snapshots answer 502 rather than wait for a timeout.
    camera_a = f.camera(centre_a, AreaKind.COOKING, url="rtsp://cam:pw@127.0.0.1:9/cooking")
    f.camera(centre_b, AreaKind.COOKING, url="rtsp://cam:pw@127.0.0.1:9/other")
    users = {
        "parent_a": f.parent_of(centre_a),
        "parent_b": f.parent_of(centre_b),
        "operator_a": f.operator_of(centre_a),
        "operator_b": f.operator_of(centre_b),
        "inspector_in": f.inspector_of(agency_in),
        "inspector_out": f.inspector_of(agency_out),
        "technician": f.technician_for(centre_a),
        "admin": f.user(Role.ADMIN),
    }
    f.technician_for(centre_b)
    commissioning = Commissioning(
        centre_id=centre_a.id,
        standard_id=active_standard().id,
        technician_id=users["technician"].id,
    )
    db.session.add(commissioning)
    db.session.commit()
    manual_item = next(i for i in active_standard().items if i.kind.value == "manual")
    cooking = next(a for a in centre_a.areas if a.kind is AreaKind.COOKING)
    snapshot = snapshot_service.take(users["admin"], camera_a.id, SnapshotReason.SCHEDULE, _shooter)
    tokens = {name: issue_access_token(user) for name, user in users.items()}

    def as_(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}"}

    # The rest the way people make it: through the API.
    patrol = _ok(
        client.post(
            f"{API}/inspector/patrols",
            json={"centre_id": centre_a.id, "mode": "remote"},
            headers=as_("inspector_in"),
        )
    )
    finding = _ok(
        client.post(
            f"{API}/inspector/patrols/{patrol['id']}/findings",
            json={"category": "hygiene", "severity": "II", "description": "地面有积水"},
            headers=as_("inspector_in"),
        )
    )

    def draft() -> int:
        return _ok(
            client.post(
                f"{API}/inspector/notices",
                json={
                    "centre_id": centre_a.id,
                    "finding_ids": [finding["id"]],
                    "requirements": "清理积水，保持地面干燥",
                    "working_days": 5,
                },
                headers=as_("inspector_in"),
            )
        )["id"]

    notice_a = draft()
    _ok(client.post(f"{API}/inspector/notices/{notice_a}/issue", headers=as_("inspector_in")), 200)
    draft_a = draft()
    # A notice the operator answered with a photo (its own, so notice_a's state stays issued).
    answered_a = draft()
    issue_answered = f"{API}/inspector/notices/{answered_a}/issue"
    _ok(client.post(issue_answered, headers=as_("inspector_in")), 200)
    answer = _ok(
        client.post(
            f"{API}/notices/{answered_a}/responses",
            data={"text": "已整改", "photos": (io.BytesIO(PHOTO[1]), PHOTO[0])},
            content_type="multipart/form-data",
            headers=as_("operator_a"),
        )
    )
    concern = _ok(
        client.post(
            f"{API}/parent/concerns",
            data={
                "centre_id": str(centre_a.id),
                "text": "孩子说饭菜有异味",
                "client_key": "matrix-world",
                "photos": (io.BytesIO(PHOTO[1]), PHOTO[0]),
            },
            content_type="multipart/form-data",
            headers=as_("parent_a"),
        )
    )
    codes = [
        _ok(
            client.post(
                f"{API}/centres/{centre_a.id}/invite-codes", json={}, headers=as_("operator_a")
            )
        )
        for _ in range(2)
    ]
    ids = {
        "district_a": district_a.id,
        "centre_a": centre_a.id,
        "camera_a": camera_a.id,
        "area_a": cooking.id,
        "snapshot_a": snapshot.id,
        "patrol_a": patrol["id"],
        "finding_a": finding["id"],
        "notice_a": notice_a,
        "draft_a": draft_a,
        "answered_a": answered_a,
        "response_photo_a": answer["photos"][0]["id"],
        "concern_a": concern["id"],
        "concern_photo_a": concern["photos"][0]["id"],
        "spare_code_a": codes[1]["id"],
        "manual_item": manual_item.id,
    }
    return World(ids=ids, tokens={**tokens, "invite_code": codes[0]["code"]})


@pytest.mark.parametrize("route", sorted(RULES), ids=lambda r: f"{r[0]} {r[1]}")
def test_the_route_lets_in_exactly_whom_its_rule_names(app, client, world, route):
    rule = RULES[route]
    method = route[0]
    path = rule.path.format(**world.ids)
    wrong = []
    # The denied callers first: a caller who is let in may change what the next one finds.
    order = sorted(CALLERS, key=lambda c: c in rule.allowed)
    for caller in order:
        headers = (
            {} if caller == "anonymous" else {"Authorization": f"Bearer {world.tokens[caller]}"}
        )
        extra = rule.body(world) if rule.body else {}
        response = client.open(path, method=method, headers=headers, **extra)
        status = response.status_code
        response.close()  # a file answer (photo, PDF) holds the file open until closed
        # 502 is the camera's answer (unreachable), not the server failing.
        assert status != 500, f"{method} {path} as {caller}: {response.get_data()[:300]}"
        let_in = status not in DENIED
        if let_in != (caller in rule.allowed):
            wrong.append(f"{caller}: {status} {response.get_data(as_text=True)[:160]}")
        if not let_in:
            body = response.get_json()
            assert body and body.get("error") and body.get("message"), (caller, status)
    assert not wrong, f"{method} {path}\n" + "\n".join(wrong)
