"""The JSON API against its own OpenAPI document (/api/v1/openapi.json), fuzzed with schemathesis.

Every documented operation gets generated requests, valid and invalid, from each role signed in
with its own access token and from an anonymous caller (with made-up tokens), sent to the app
in-process (WSGI). Each role works in a fresh, populated world: a live centre with four rooms and
cameras, patrols, findings, notices, concerns with photos, a snapshot, an invite code. Ids in
paths, queries and bodies are those of real rows part of the time, so requests get past the 404s
into the code behind them. Every answer must:

- never be a 5xx;
- have a status code the operation lists itself (the catch-all `default` response flask-smorest
  adds to every operation does not count), a documented content type and a body that matches
  the documented schema;
- refuse what the document calls invalid (schemathesis' `negative_data_rejection`), and not
  refuse in the request parser what it calls valid (a 400, or a 422 with per-field messages).

The camera is replaced by in-process stand-ins (snapshots, commissioning probes) and WeChat by
the local stub, so nothing waits on a network timeout. CI runs a few examples per operation and
role; ``BK_RELIABILITY_FULL=1`` runs many more, plus schemathesis' coverage phase (boundary
values and missing or mistyped parts of every request). `pytest -s` prints what each role
reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from PIL import Image
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    is_unexpected_http_status_case,
    response_headers_conformance,
    response_schema_conformance,
    skips_on_unexpected_http_status,
)

from app.extensions import db
from app.models import AreaKind, CentreStatus, Role, Snapshot, SnapshotReason, TechnicianAssignment
from app.services import onboarding
from media.probe import ProbeResult
from media.snapshot import Snapshot as Shot
from tests import factories as f
from tests.reliability_support import full_run
from tests.stubs.wechat import WeChatStub
from tests.stubs.wechat import wechat_stub as _wechat_stub_fixture

wechat_stub = _wechat_stub_fixture  # /auth/wxa asks the local WeChat stub

ROLES = ["anonymous", "parent", "operator", "inspector", "technician", "admin"]
# Examples per operation and role. Anonymous calls stop at the token check: a few suffice.
QUICK_EXAMPLES = {"anonymous": 2, "signed_in": 4}
FULL_EXAMPLES = {"anonymous": 20, "signed_in": 60}
# How often a generated id is replaced by the id of a real row.
REAL_ID_PROBABILITY = 0.5


def noisy_jpeg() -> bytes:
    """A camera-like picture: neither black nor the same twice (no tamper alarm)."""
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(buffer, "PNG")
    return buffer.getvalue()


# --- stand-ins for the camera ----------------------------------------------------------------


def fake_shooter(camera_id: int, url: str) -> Shot:
    data = noisy_jpeg()
    return Shot(
        jpeg=data,
        sha256=hashlib.sha256(data).hexdigest(),
        taken_at=datetime.now(UTC),
        source="pull",
    )


def fake_prober(url: str) -> dict[str, Any]:
    """What the commissioning probe measures on a camera that meets the standard."""
    return ProbeResult(
        url="rtsp://192.0.2.10:554/stream",
        reachable=True,
        codec="h264",
        profile="Main",
        pix_fmt="yuv420p",
        bit_depth=8,
        width=1280,
        height=720,
        fps=25.0,
        keyframe_interval=1.0,
        keyframes_seen=5,
        sampled_seconds=5.0,
    ).as_dict()


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    # Dictionary name → ids (or codes) of real rows, drawn into generated requests.
    ids: dict[str, list[Any]]
    # Operation → status codes it answered, for the summary and the sanity check.
    answers: dict[str, Counter[int]] = field(default_factory=dict)


@pytest.fixture
def app_config(app_config, wechat_stub: WeChatStub):
    return dataclasses.replace(
        app_config,
        WECHAT_API_BASE=wechat_stub.base_url,
        WXA_APP_ID=wechat_stub.appid,
        WXA_APP_SECRET=wechat_stub.secret,
        # The official account's web sign-in asks the same stub.
        WECHAT_APP_ID=wechat_stub.appid,
        WECHAT_APP_SECRET=wechat_stub.secret,
        WECHAT_OAUTH_BASE=wechat_stub.base_url,
        WECHAT_HTTP_TIMEOUT_S=2.0,
    )


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.fixture
def world(app, client, wechat_stub: WeChatStub) -> Iterator[World]:
    """Meilan: a live centre with its four rooms and cameras (everyone's), a centre being
    installed (the technician's), a second live centre the parent follows; Longhua: a centre
    outside everyone's scope but the admin's. Rows the API makes are made through the API."""
    app.extensions["bk_snapshot"] = fake_shooter
    app.extensions["bk_prober"] = fake_prober
    meilan = f.district("美兰区")
    longhua = f.district("龙华区")
    agency = f.agency(meilan)
    f.agency(longhua, prefix="龙华市监整")
    centre = f.centre(meilan, "阳光小树苗托管中心", status=CentreStatus.LIVE)
    cameras = [f.camera(centre, kind) for kind in f.AREA_NAMES]
    installing = f.centre(meilan, "启航午托部", status=CentreStatus.INSTALLING)
    f.camera(installing, AreaKind.COOKING)
    spare = f.centre(meilan, "新苗午托部")
    elsewhere = f.centre(longhua, "龙华区托管中心")
    f.camera(elsewhere, AreaKind.COOKING)
    inspector = f.inspector_of(agency)
    colleague = f.inspector_of(agency)
    operator = f.operator_of(centre)
    technician = f.technician_for(centre)
    db.session.add(TechnicianAssignment(technician_id=technician.id, centre_id=installing.id))
    parent = f.parent_of(centre, spare, display_name="张家长", phone="13800000001")
    admin = f.user(Role.ADMIN)
    standard = onboarding.active_standard()
    relative = Path("snapshots") / str(cameras[0].id) / "seed.jpg"
    picture = noisy_jpeg()
    (Path(app.config["INSTANCE_PATH"]) / relative).parent.mkdir(parents=True)
    (Path(app.config["INSTANCE_PATH"]) / relative).write_bytes(picture)
    snapshot = Snapshot(
        camera_id=cameras[0].id,
        path=str(relative),
        sha256=hashlib.sha256(picture).hexdigest(),
        size_bytes=len(picture),
        reason=SnapshotReason.MANUAL,
        taken_at=datetime.now(UTC),
    )
    db.session.add(snapshot)
    db.session.commit()
    h = {
        "anonymous": {},
        "parent": f.login(client, parent.username),
        "operator": f.login(client, operator.username),
        "inspector": f.login(client, inspector.username),
        "technician": f.login(client, technician.username),
        "admin": f.login(client, admin.username),
    }
    ih, oh = h["inspector"], h["operator"]
    rooms = {a.kind: a.id for a in centre.areas}

    # An ended patrol with two findings, and one still open.
    patrol = _ok(
        client.post(
            "/api/v1/inspector/patrols", json={"centre_id": centre.id, "mode": "remote"}, headers=ih
        ),
        201,
    )
    findings = [
        _ok(
            client.post(
                f"/api/v1/inspector/patrols/{patrol['id']}/findings",
                json={
                    "category": "hygiene",
                    "severity": "II",
                    "description": text,
                    "area_id": rooms[AreaKind.COOKING],
                    "snapshot_ids": [snapshot.id],
                },
                headers=ih,
            ),
            201,
        )
        for text in ("操作间垃圾桶未加盖", "餐具消毒记录缺失")
    ]
    _ok(client.post(f"/api/v1/inspector/patrols/{patrol['id']}/end", json={}, headers=ih))
    open_patrol = _ok(
        client.post(
            "/api/v1/inspector/patrols",
            json={"centre_id": centre.id, "mode": "on_site"},
            headers=ih,
        ),
        201,
    )
    # Notices: one issued, one issued and answered with a photo, one draft.
    notices = [
        _ok(
            client.post(
                "/api/v1/inspector/notices",
                json={
                    "centre_id": centre.id,
                    "finding_ids": [finding["id"]],
                    "requirements": requirements,
                    "working_days": 5,
                },
                headers=ih,
            ),
            201,
        )
        for finding, requirements in zip(findings, ("垃圾桶加盖", "补全消毒记录"), strict=True)
    ]
    for notice in notices:
        _ok(client.post(f"/api/v1/inspector/notices/{notice['id']}/issue", headers=ih))
    draft = _ok(
        client.post(
            "/api/v1/inspector/notices",
            json={
                "centre_id": centre.id,
                "finding_ids": [findings[0]["id"]],
                "requirements": "复查后再定",
                "deadline": None,
                "working_days": 3,
            },
            headers=ih,
        ),
        201,
    )
    _ok(client.post(f"/api/v1/notices/{notices[1]['id']}/acknowledge", headers=oh))
    answer = _ok(
        client.post(
            f"/api/v1/notices/{notices[1]['id']}/responses",
            data={"text": "已整改", "photos": [(io.BytesIO(png()), "fixed.png")]},
            headers=oh,
            content_type="multipart/form-data",
        ),
        201,
    )
    # The parent's concerns, each with a photo; the second one accepted.
    concerns = [
        _ok(
            client.post(
                "/api/v1/parent/concerns",
                data={
                    "centre_id": str(centre.id),
                    "text": text,
                    "client_key": uuid.uuid4().hex,
                    "area_id": str(rooms[AreaKind.COOKING]),
                    "photos": [(io.BytesIO(png()), "bin.png")],
                },
                headers=h["parent"],
                content_type="multipart/form-data",
            ),
            201,
        )
        for text in ("厨房垃圾桶没有盖子", "餐具没有消毒")
    ]
    _ok(client.post(f"/api/v1/inspector/concerns/{concerns[1]['id']}/accept", headers=ih))
    code = _ok(client.post(f"/api/v1/centres/{centre.id}/invite-codes", headers=oh), 201)

    ids: dict[str, list[Any]] = {
        "centre": [centre.id, installing.id, spare.id, elsewhere.id],
        "spare_centre": [spare.id],
        "camera": [c.id for c in cameras],
        "area": list(rooms.values()),
        "patrol": [patrol["id"], open_patrol["id"]],
        "finding": [x["id"] for x in findings],
        "notice": [n["id"] for n in notices] + [draft["id"]],
        "concern": [c["id"] for c in concerns],
        "photo": [p["id"] for c in concerns for p in c["photos"]]
        + [p["id"] for p in answer["photos"]],
        "snapshot": [snapshot.id],
        "code_id": [code["id"]],
        # Invite codes for /parent/bind; wx.login codes the stub knows for /auth/wxa.
        "code": [code["code"], wechat_stub.add_code(), wechat_stub.add_code()],
        "item": [i.id for i in standard.items],
        "district": [meilan.id, longhua.id],
        "user": [inspector.id, colleague.id, operator.id],
        "year": [2025, 2026],
    }
    yield World(headers=h, ids=ids)
    wxa_client = app.extensions.pop("bk_wxa_client", None)
    if wxa_client is not None:
        wxa_client._http.close()


# Which dictionary of real ids feeds which parameter: in a path or a query by name alone, in a
# JSON or form body by its path.
BINDINGS = {
    "centre_id": "centre",
    "camera_id": "camera",
    "area_id": "area",
    "patrol_id": "patrol",
    "notice_id": "notice",
    "concern_id": "concern",
    "photo_id": "photo",
    "snapshot_id": "snapshot",
    "code_id": "code_id",
    "item_id": "item",
    "year": "year",
    "body.centre_id": "centre",
    "body.area_id": "area",
    "body.patrol_id": "patrol",
    "body.snapshot_id": "snapshot",
    "body.district_id": "district",
    "body.assignee_id": "user",
    "body.code": "code",
    "body.finding_ids[*]": "finding",
    "body.notice_ids[*]": "notice",
    "body.snapshot_ids[*]": "snapshot",
}


def fuzz_config(world: World, role: str) -> SchemathesisConfig:
    examples = FULL_EXAMPLES if full_run() else QUICK_EXAMPLES
    return SchemathesisConfig.from_dict(
        {
            "dictionaries": {name: {"values": values} for name, values in world.ids.items()},
            "parameters": {
                key: {"dictionary": name, "probability": REAL_ID_PROBABILITY}
                for key, name in BINDINGS.items()
            },
            "operations": [
                {
                    # Unlinking can cut the parent off the spare centre only, so the main one
                    # stays linked for the operations that come after it.
                    "include-method": "DELETE",
                    "include-path": "/api/v1/parent/centres/{centre_id}",
                    "parameters": {
                        "path.centre_id": {
                            "dictionary": "spare_centre",
                            "probability": REAL_ID_PROBABILITY,
                        }
                    },
                }
            ],
            "generation": {
                "max-examples": examples["anonymous" if role == "anonymous" else "signed_in"],
                "database": "none",  # no .hypothesis/ folder in the working tree
                # Signed-in roles keep their own token; the anonymous caller gets made-up ones.
                "with-security-parameters": role == "anonymous",
            },
            "phases": {
                "coverage": {"enabled": full_run()},
                "stateful": {"enabled": False},
            },
        }
    )


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def api_schema(app, world: World, role: str) -> Iterator[schemathesis.schemas.BaseSchema]:
    yield schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, config=fuzz_config(world, role)
    )
    reached = sorted(
        op for op, statuses in world.answers.items() if any(200 <= s < 300 for s in statuses)
    )
    total = sum(sum(statuses.values()) for statuses in world.answers.values())
    print(
        f"\n== {role}: {total} requests over {len(world.answers)} operations; "
        f"{len(reached)} answered 2xx at least once ({'full' if full_run() else 'quick'} run) =="
    )
    if role != "anonymous":
        # The token and the world really worked: otherwise every answer would be a 401 or a
        # 404, which conform to the document too.
        assert "GET /api/v1/auth/me" in reached, world.answers.get("GET /api/v1/auth/me")
        assert len(reached) >= 5, reached


# --- the checks -------------------------------------------------------------------------------


@skips_on_unexpected_http_status  # probes with an undocumented method or content type
def status_code_documented(ctx, response, case) -> None:
    """The answer's status is one the operation lists itself, not only under `default`."""
    documented = [code for code in case.operation.responses.status_codes if code != "default"]
    assert str(response.status_code) in documented, (
        f"{case.operation.label} answered {response.status_code}; documented: {documented}"
    )


@skips_on_unexpected_http_status
def positive_data_passes_the_parser(ctx, response, case) -> None:
    """A request the document calls valid is not refused by the request parser (a 400, or a
    422 with per-field messages): the document says what the code accepts. Rules beyond the
    schema (a room of another centre, a blank text) answer a 422 with a single `field`."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    body = response.json() if response.status_code in (400, 422) else {}
    assert response.status_code != 400 and "fields" not in body, (
        f"{case.operation.label} refused valid input: {response.status_code} {body}"
    )


CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_documented,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
    positive_data_passes_the_parser,
]

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_answer_matches_the_openapi_document(case, role: str, world: World) -> None:
    # buffered: file answers (photos, PDFs) are read whole, so their files are closed at once.
    response = case.call_and_validate(
        headers=world.headers[role] or None, checks=CHECKS, buffered=True
    )
    if not is_unexpected_http_status_case(case):  # not a probe with an undocumented method
        world.answers.setdefault(case.operation.label, Counter())[response.status_code] += 1
