"""Onboarding: invitation → installation → itemised check → live, suspension, and the coverage
figures regulators report."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AreaKind,
    CameraStatus,
    Centre,
    CentreStatus,
    CentreStatusChange,
    ChecklistItem,
    ChecklistItemKind,
    Role,
    TechnicianAssignment,
)
from tests import factories as f


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "yellow").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def site(app, client):
    meilan = f.district("美兰区")
    agency = f.agency(meilan)
    inspector = f.inspector_of(agency)
    admin = f.user(Role.ADMIN)
    db.session.commit()
    ih = f.login(client, inspector.username)
    invited = client.post(
        "/api/v1/centres/invitations",
        json={"name": "美兰区新苗托管", "district_id": meilan.id, "letter": "倡议书正文"},
        headers=ih,
    )
    assert invited.status_code == 201, invited.get_json()
    centre_id = invited.get_json()["id"]
    technician = f.user(Role.TECHNICIAN)
    db.session.add(TechnicianAssignment(technician_id=technician.id, centre_id=centre_id))
    db.session.commit()
    return {
        "district": meilan,
        "centre_id": centre_id,
        "inspector_h": ih,
        "technician": technician,
        "th": f.login(client, technician.username),
        "admin_h": f.login(client, admin.username),
    }


def post(client, site, path, who="th", **kwargs):
    return client.post(f"/api/v1/centres/{site['centre_id']}{path}", headers=site[who], **kwargs)


def test_an_invited_centre_starts_invited_with_its_four_rooms(client, site):
    centre = client.get(f"/api/v1/centres/{site['centre_id']}", headers=site["inspector_h"])
    body = centre.get_json()
    assert body["status"] == "invited"
    assert sorted(a["kind"] for a in body["areas"]) == ["cooking", "prep", "storage", "washing"]


@pytest.mark.parametrize("who", ["inspector_h", "admin_h"])
def test_an_invitation_to_an_unknown_district_is_a_422_and_creates_nothing(client, site, who):
    """It used to reach the database as a dangling foreign key: a 500."""
    before = db.session.scalar(select(func.count(Centre.id)))
    response = client.post(
        "/api/v1/centres/invitations",
        json={"name": "无此区托管", "district_id": 999_999},
        headers=site[who],
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "district_id"
    assert response.get_json()["message"] == "找不到该行政区"
    assert db.session.scalar(select(func.count(Centre.id))) == before


def test_moves_out_of_order_are_refused_with_the_current_state(client, site):
    assert post(client, site, "/commissioning").status_code == 409
    refused = post(client, site, "/sign-off")
    assert refused.status_code in (404, 409)
    assert (
        post(client, site, "/suspension", who="inspector_h", json={"reason": "x"}).status_code
        == 409
    )
    assert post(client, site, "/installation").status_code == 200
    again = post(client, site, "/installation")
    assert again.status_code == 409
    assert again.get_json()["current_status"] == "installing"


def test_an_inspector_cannot_start_commissioning(client, site):
    post(client, site, "/installation")
    assert post(client, site, "/commissioning", who="inspector_h").status_code == 403


def _to_commissioning(client, site):
    assert post(client, site, "/installation").status_code == 200
    response = post(client, site, "/commissioning")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_checklist_lists_every_item_and_what_blocks_going_live(client, site):
    checklist = _to_commissioning(client, site)
    codes = [i["code"] for i in checklist["items"]]
    assert codes[:3] == ["area_coverage", "stream_reachable", "codec_h264"]
    assert "signage_photo" in codes
    assert checklist["ready"] is False
    assert "张贴“温馨提示”标识（上传照片）" in checklist["blocking"]


def test_going_live_is_refused_until_every_required_item_passes(client, site):
    _to_commissioning(client, site)
    refused = post(client, site, "/sign-off")
    assert refused.status_code == 409
    assert refused.get_json()["message"].startswith("以下必检项尚未通过：")
    assert refused.get_json()["current_status"] == "commissioning"


def _item(code: str) -> ChecklistItem:
    return db.session.scalar(select(ChecklistItem).where(ChecklistItem.code == code))


def test_a_manual_item_needs_its_evidence(client, site):
    _to_commissioning(client, site)
    signage = _item("signage_photo")
    without = post(
        client,
        site,
        f"/checklist/items/{signage.id}",
        data={"note": "已张贴"},
        content_type="multipart/form-data",
    )
    assert without.status_code == 422
    assert "需要上传照片" in without.get_json()["message"]
    with_photo = post(
        client,
        site,
        f"/checklist/items/{signage.id}",
        data={"photos": [(io.BytesIO(jpeg()), "sign.jpg")]},
        content_type="multipart/form-data",
    )
    assert with_photo.status_code == 200, with_photo.get_json()
    item = next(i for i in with_photo.get_json()["items"] if i["code"] == "signage_photo")
    assert item["passed"] is True
    network = _item("network_line")
    empty_note = post(
        client,
        site,
        f"/checklist/items/{network.id}",
        data={"note": " "},
        content_type="multipart/form-data",
    )
    assert empty_note.status_code == 422


def test_an_automatic_item_cannot_be_ticked_by_hand(client, site):
    _to_commissioning(client, site)
    automatic = _item("resolution")
    response = post(
        client,
        site,
        f"/checklist/items/{automatic.id}",
        data={"photos": [(io.BytesIO(jpeg()), "x.jpg")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert automatic.kind is ChecklistItemKind.AUTOMATIC


def test_suspension_stops_parents_watch_urls_and_reinstating_restores(client, site, app):
    # A live centre with a camera, a parent, and a window open all day.
    centre = f.centre(site["district"], "已上线中心", status=CentreStatus.LIVE)
    centre.meal_windows[0].starts_at = dt.time(0, 0)
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
    camera = f.camera(centre, AreaKind.COOKING)
    parent = f.parent_of(centre)
    db.session.commit()
    ph = f.login(client, parent.username)
    assert client.post(f"/api/v1/cameras/{camera.id}/watch", headers=ph).status_code == 200
    suspended = client.post(
        f"/api/v1/centres/{centre.id}/suspension",
        json={"reason": "摄像头被遮挡，整改期间暂停"},
        headers=site["inspector_h"],
    )
    assert suspended.get_json()["status"] == "suspended"
    refused = client.post(f"/api/v1/cameras/{camera.id}/watch", headers=ph)
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "该机构直播已暂停：摄像头被遮挡，整改期间暂停"
    restored = client.delete(f"/api/v1/centres/{centre.id}/suspension", headers=site["inspector_h"])
    assert restored.get_json()["status"] == "live"
    assert client.post(f"/api/v1/cameras/{camera.id}/watch", headers=ph).status_code == 200
    steps = db.session.scalars(
        select(CentreStatusChange.to_status).where(CentreStatusChange.centre_id == centre.id)
    ).all()
    assert [s.value for s in steps] == ["suspended", "live"]


def test_a_suspension_needs_a_reason(client, site):
    centre = f.centre(site["district"], status=CentreStatus.LIVE)
    db.session.commit()
    response = client.post(
        f"/api/v1/centres/{centre.id}/suspension", json={"reason": ""}, headers=site["inspector_h"]
    )
    assert response.status_code == 422


def test_coverage_figures_match_a_hand_count(client, site):
    district = site["district"]
    longhua = f.district("龙华区")
    live_a = f.centre(district, "甲", status=CentreStatus.LIVE)
    live_b = f.centre(district, "乙", status=CentreStatus.LIVE)
    f.centre(district, "丙", status=CentreStatus.INSTALLING)
    f.centre(longhua, "外区", status=CentreStatus.LIVE)  # outside the jurisdiction
    for kind in (AreaKind.PREP, AreaKind.COOKING):
        f.camera(live_a, kind).status = CameraStatus.ONLINE
    f.camera(live_b, AreaKind.COOKING).status = CameraStatus.OFFLINE
    now = dt.datetime.now(dt.UTC)
    for centre, days in ((live_a, 30), (live_b, 10)):
        db.session.add(
            CentreStatusChange(
                centre_id=centre.id,
                to_status=CentreStatus.INVITED,
                at=now - dt.timedelta(days=days),
            )
        )
        db.session.add(
            CentreStatusChange(
                centre_id=centre.id,
                from_status=CentreStatus.INVITED,
                to_status=CentreStatus.LIVE,
                at=now,
            )
        )
    db.session.commit()
    figures = client.get("/api/v1/coverage", headers=site["inspector_h"]).get_json()
    # By hand: in Meilan the invited centre of the fixture, 甲, 乙 (live), 丙 (installing).
    assert figures["centres"]["total"] == 4
    assert figures["centres"]["by_status"]["live"] == 2
    assert figures["centres"]["by_status"]["invited"] == 1
    assert figures["centres"]["by_status"]["installing"] == 1
    assert figures["centres"]["enrolled"] == 2
    assert figures["cameras"]["online"] == 2
    assert figures["cameras"]["offline"] == 1
    assert figures["room_coverage"]["cooking"] == {"live_centres": 2, "covered": 1}
    assert figures["room_coverage"]["prep"] == {"live_centres": 2, "covered": 1}
    assert figures["room_coverage"]["washing"] == {"live_centres": 2, "covered": 0}
    assert figures["mean_days_to_commission"] == 20.0
    assert figures["enrolled_over_time"][-1]["enrolled"] == 2
    admin_view = client.get("/api/v1/coverage", headers=site["admin_h"]).get_json()
    assert admin_view["centres"]["total"] == 5


def test_parents_and_operators_cannot_read_coverage(client, site):
    parent = f.parent_of()
    db.session.commit()
    response = client.get("/api/v1/coverage", headers=f.login(client, parent.username))
    assert response.status_code == 403


# --- the standard itself -------------------------------------------------------------------

STANDARD_V2 = {
    "version": "2027.1",
    "title": "安装调试检查规范（2027 版）",
    "items": [
        {"code": "area_coverage", "title": "四个区域均有摄像头", "kind": "automatic"},
        {
            "code": "resolution",
            "title": "分辨率不低于 1080p",
            "kind": "automatic",
            "rule": {"min_height": 1080},
        },
        {
            "code": "hood_photo",
            "title": "排烟罩清洁照片",
            "kind": "manual",
            "guidance": "拍摄排烟罩内侧",
        },
    ],
}


def test_an_admin_publishes_a_new_standard_and_new_commissionings_use_it(client, site):
    assert post(client, site, "/installation").status_code == 200
    assert post(client, site, "/commissioning").status_code == 201
    before = client.get(f"/api/v1/centres/{site['centre_id']}/checklist", headers=site["th"])

    published = client.post(
        "/api/v1/admin/checklist-standards", json=STANDARD_V2, headers=site["admin_h"]
    )
    assert published.status_code == 201, published.get_json()
    body = published.get_json()
    assert [i["code"] for i in body["items"]] == ["area_coverage", "resolution", "hood_photo"]
    assert body["items"][1]["rule"] == {"min_height": 1080}
    current = client.get("/api/v1/admin/checklist-standard", headers=site["admin_h"])
    assert current.get_json()["version"] == "2027.1"

    # The commissioning under way keeps its version.
    after = client.get(f"/api/v1/centres/{site['centre_id']}/checklist", headers=site["th"])
    assert after.get_json()["standard_version"] == before.get_json()["standard_version"]
    assert after.get_json()["items"] == before.get_json()["items"]

    # A centre invited now is commissioned against the new one.
    invited = client.post(
        "/api/v1/centres/invitations",
        json={"name": "美兰区第二托管", "district_id": site["district"].id},
        headers=site["inspector_h"],
    )
    centre_id = invited.get_json()["id"]
    db.session.add(TechnicianAssignment(technician_id=site["technician"].id, centre_id=centre_id))
    db.session.commit()
    for step in ("installation", "commissioning"):
        client.post(f"/api/v1/centres/{centre_id}/{step}", headers=site["th"])
    fresh = client.get(f"/api/v1/centres/{centre_id}/checklist", headers=site["th"]).get_json()
    assert fresh["standard_version"] == "2027.1"
    assert [i["title"] for i in fresh["items"]] == [i["title"] for i in STANDARD_V2["items"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"items": []}, None),
        (
            {"items": [{"code": "make_tea", "title": "泡茶", "kind": "automatic"}]},
            "未知的自动检查项",
        ),
        (
            {"items": [STANDARD_V2["items"][2], STANDARD_V2["items"][2]]},
            "检查项编码重复",
        ),
        (
            {
                "items": [
                    {
                        "code": "resolution",
                        "title": "分辨率",
                        "kind": "automatic",
                        "rule": {"min_height": "high"},
                    }
                ]
            },
            "参数 min_height 无效",
        ),
    ],
)
def test_a_bad_standard_is_refused_and_the_old_one_stays(client, site, change, message):
    before = client.get("/api/v1/admin/checklist-standard", headers=site["admin_h"]).get_json()
    refused = client.post(
        "/api/v1/admin/checklist-standards", json={**STANDARD_V2, **change}, headers=site["admin_h"]
    )
    assert refused.status_code == 422
    if message:
        assert message in refused.get_json()["message"]
    after = client.get("/api/v1/admin/checklist-standard", headers=site["admin_h"]).get_json()
    assert after == before


def test_a_version_is_published_once_and_only_by_an_admin(client, site):
    first = client.post(
        "/api/v1/admin/checklist-standards", json=STANDARD_V2, headers=site["admin_h"]
    )
    assert first.status_code == 201
    again = client.post(
        "/api/v1/admin/checklist-standards", json=STANDARD_V2, headers=site["admin_h"]
    )
    assert again.status_code == 409
    refused = client.post(
        "/api/v1/admin/checklist-standards",
        json={**STANDARD_V2, "version": "2027.2"},
        headers=site["inspector_h"],
    )
    assert refused.status_code == 403
