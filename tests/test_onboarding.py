"""Onboarding: invitation → installation → itemised check → live, suspension, and the coverage
figures regulators report."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models import (
    AgencyKind,
    AreaKind,
    CameraStatus,
    Centre,
    CentreStatus,
    CentreStatusChange,
    ChecklistItem,
    ChecklistItemKind,
    ChecklistResult,
    Role,
    TechnicianAssignment,
    WatchSession,
)
from app.realtime import NAMESPACE
from app.services.centres import CENTRE_TZ
from app.services.coverage import ROOM_KINDS
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
        "agency": agency,
        "inspector": inspector,
        "centre_id": centre_id,
        "inspector_h": ih,
        "technician": technician,
        "th": f.login(client, technician.username),
        "admin_h": f.login(client, admin.username),
    }


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


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


def history(client, site, who="inspector_h", centre_id=None):
    return client.get(
        f"/api/v1/centres/{centre_id or site['centre_id']}/history", headers=site[who]
    )


def test_the_history_shows_the_invitation_and_every_step_with_who_and_why(client, site):
    assert post(client, site, "/installation").status_code == 200
    assert post(client, site, "/commissioning").status_code == 201
    response = history(client, site)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    invitation = body["invitation"]
    assert invitation["agency_id"] == site["agency"].id
    assert invitation["agency_name"] == "美兰区市场监督管理局"
    assert invitation["sent_by"]["name"] == site["inspector"].display_name
    assert invitation["letter"] == "倡议书正文"
    sent = dt.datetime.fromisoformat(invitation["sent_at"])
    accepted = dt.datetime.fromisoformat(invitation["accepted_at"])
    assert sent <= accepted <= dt.datetime.now(dt.UTC)
    technician = site["technician"].display_name
    assert [
        (step["from_status"], step["to_status"], step["actor"]["name"], step["reason"])
        for step in body["history"]
    ] == [
        (None, "invited", site["inspector"].display_name, "美兰区市场监督管理局发出倡议书"),
        ("invited", "installing", technician, "接受倡议，开始安装"),
        ("installing", "commissioning", technician, "安装完成，开始调试验收"),
    ]
    assert body["history"][-1]["to_label"] == "调试验收中"
    assert body["status_label"] == "调试验收中"


def test_a_suspension_and_its_reason_appear_in_the_history(client, site):
    centre = f.centre(site["district"], status=CentreStatus.LIVE)
    db.session.commit()
    suspended = client.post(
        f"/api/v1/centres/{centre.id}/suspension",
        json={"reason": "后厨卫生整改"},
        headers=site["inspector_h"],
    )
    assert suspended.status_code == 200
    steps = history(client, site, "admin_h", centre.id).get_json()["history"]
    assert steps[-1]["from_status"] == "live"
    assert steps[-1]["to_status"] == "suspended"
    assert steps[-1]["reason"] == "后厨卫生整改"
    assert steps[-1]["actor"] == {
        "id": site["inspector"].id,
        "name": site["inspector"].display_name,
        "role": "inspector",
    }


def test_the_history_is_for_regulators_installers_and_admins_only(client, site):
    assert history(client, site, "th").status_code == 200
    assert history(client, site, "admin_h").status_code == 200
    operator = f.operator_of(db.session.get(Centre, site["centre_id"]))
    parent = f.parent_of(db.session.get(Centre, site["centre_id"]))
    db.session.commit()
    for person in (operator, parent):
        refused = client.get(
            f"/api/v1/centres/{site['centre_id']}/history",
            headers=f.login(client, person.username),
        )
        assert refused.status_code == 403
        assert refused.get_json()["reason"] == "role"


def _admin_invites(client, site, district, **extra):
    return client.post(
        "/api/v1/centres/invitations",
        json={"name": "管理员发出的托管班", "district_id": district.id, **extra},
        headers=site["admin_h"],
    )


def test_an_admins_invitation_is_sent_in_the_name_of_the_districts_market_regulator(client, site):
    # An education bureau set up first, and a town below Meilan with no agency of its own.
    longhua = f.district("龙华区")
    longhua_education = f.agency(longhua, AgencyKind.EDUCATION, prefix="龙华教整")
    longhua_market = f.agency(longhua, prefix="龙华市监整")
    town = f.district("演丰镇", parent=site["district"])
    db.session.commit()
    cases = [(longhua, longhua_market), (town, site["agency"])]  # the town: Meilan's bureau
    for district, agency in cases:
        invited = _admin_invites(client, site, district)
        assert invited.status_code == 201, invited.get_json()
        record = history(client, site, "admin_h", invited.get_json()["id"]).get_json()
        assert record["invitation"]["agency_id"] == agency.id
        assert record["invitation"]["sent_by"]["role"] == "admin"
    named = _admin_invites(client, site, longhua, agency_id=longhua_education.id)
    assert named.status_code == 201
    record = history(client, site, "admin_h", named.get_json()["id"]).get_json()
    assert record["invitation"]["agency_name"] == "龙华区教育局"


def test_an_invitation_no_agency_could_send_is_refused(client, site):
    nowhere = f.district("无监管区")
    longhua = f.district("龙华区")
    longhua_market = f.agency(longhua, prefix="龙华市监整")
    db.session.commit()
    before = db.session.scalar(select(func.count(Centre.id)))
    no_regulator = _admin_invites(client, site, nowhere)
    assert no_regulator.status_code == 422
    assert no_regulator.get_json()["message"] == (
        "该行政区尚无监管部门，请先设立监管部门或指定发出倡议的部门"
    )
    other_jurisdiction = _admin_invites(client, site, nowhere, agency_id=longhua_market.id)
    assert other_jurisdiction.status_code == 422
    assert other_jurisdiction.get_json()["message"] == "该行政区不在龙华区市场监督管理局的辖区内"
    not_theirs = client.post(
        "/api/v1/centres/invitations",
        json={"name": "冒名", "district_id": site["district"].id, "agency_id": longhua_market.id},
        headers=site["inspector_h"],
    )
    assert not_theirs.status_code == 422
    assert not_theirs.get_json()["message"] == "只能以本单位的名义发出倡议"
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
    assert (
        empty_note.get_json()["message"] == "“网络专线或带宽满足要求（填写说明）”需要填写文字说明"
    )
    with_note = post(
        client,
        site,
        f"/checklist/items/{network.id}",
        data={"note": "电信 100M 专线"},
        content_type="multipart/form-data",
    )
    assert with_note.status_code == 200
    item = next(i for i in with_note.get_json()["items"] if i["code"] == "network_line")
    assert (item["passed"], item["note"]) == (True, "电信 100M 专线")


def test_a_signed_statement_item_needs_a_photo_of_the_signed_page(client, site):
    _to_commissioning(client, site)
    statement = _item("staff_informed")
    note_only = post(
        client,
        site,
        f"/checklist/items/{statement.id}",
        data={"note": "已口头告知"},
        content_type="multipart/form-data",
    )
    assert note_only.status_code == 422
    assert note_only.get_json()["message"] == (
        "“从业人员知悉拍摄（上传签字确认）”需要上传签字确认书照片"
    )
    signed = post(
        client,
        site,
        f"/checklist/items/{statement.id}",
        data={"photos": [(io.BytesIO(jpeg()), "signed.jpg")]},
        content_type="multipart/form-data",
    )
    assert signed.status_code == 200
    item = next(i for i in signed.get_json()["items"] if i["code"] == "staff_informed")
    assert item["evidence"] == "statement"  # what the page asks the technician for
    assert item["passed"] is True
    assert item["detail"] == {"evidence": "statement", "photos": 1}


# What a good 720p25 camera with a 1 s GOP measures (media/probe.py's keys).
GOOD_PROBE = {
    "reachable": True,
    "codec": "h264",
    "bit_depth": 8,
    "width": 1280,
    "height": 720,
    "fps": 25.0,
    "keyframe_interval": 1.0,
}


@pytest.fixture
def equipped(app, client, site):
    """The fixture's centre in commissioning with a camera in each of the four rooms (status
    still unknown: no stream pulled yet), a prober that finds each one good, and every
    required manual item evidenced."""
    _to_commissioning(client, site)
    centre = db.session.get(Centre, site["centre_id"])
    cameras = [f.camera(centre, kind) for kind in ROOM_KINDS]
    db.session.commit()
    app.extensions["bk_prober"] = lambda url: dict(GOOD_PROBE)
    for code in ("signage_photo", "camera_angle", "staff_informed"):
        response = post(
            client,
            site,
            f"/checklist/items/{_item(code).id}",
            data={"photos": [(io.BytesIO(jpeg()), "evidence.jpg")]},
            content_type="multipart/form-data",
        )
        assert response.status_code == 200, response.get_json()
    return cameras


def _online_since(cameras, at: dt.datetime) -> None:
    """What the media runner writes when it first pulls each stream at `at`."""
    for camera in cameras:
        camera.status, camera.status_changed_at = CameraStatus.ONLINE, at
    db.session.commit()


def _items(response) -> dict[str, dict]:
    return {i["code"]: i for i in response.get_json()["items"]}


def test_a_centre_cannot_go_live_with_its_cameras_still_unknown(client, site, equipped):
    checked = post(client, site, "/checklist/automatic")
    items = _items(checked)
    assert items["stream_reachable"]["passed"] is True  # the probes reached every camera
    assert items["area_coverage"]["passed"] is False
    assert items["area_coverage"]["detail"] == {
        "missing": [],
        "not_online": ["备餐间", "储存间", "操作间", "清洗间"],
    }
    assert items["online_recent"]["passed"] is False
    assert items["online_recent"]["required"] is True
    refused = post(client, site, "/sign-off")
    assert refused.status_code == 409
    assert refused.get_json()["blocking"] == [
        "备餐间、储存间、操作间、清洗间均有在线摄像头",
        "摄像头持续在线（最近 10 分钟）",
    ]


def test_cameras_online_for_less_than_the_rule_s_minutes_do_not_pass(client, site, equipped):
    _online_since(equipped, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3))
    items = _items(post(client, site, "/checklist/automatic"))
    assert items["area_coverage"]["passed"] is True
    assert items["online_recent"]["passed"] is False
    refused = post(client, site, "/sign-off")
    assert refused.get_json()["blocking"] == ["摄像头持续在线（最近 10 分钟）"]


def test_a_room_whose_only_camera_is_offline_is_not_covered(client, site, equipped):
    _online_since(equipped, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    equipped[3].status = CameraStatus.OFFLINE  # the washing room's
    db.session.commit()
    items = _items(post(client, site, "/checklist/automatic"))
    assert items["area_coverage"]["passed"] is False
    assert items["area_coverage"]["detail"]["not_online"] == ["清洗间"]


def test_sign_off_refuses_automatic_results_older_than_a_day(client, site, equipped):
    _online_since(equipped, dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
    assert _items(post(client, site, "/checklist/automatic"))["online_recent"]["passed"] is True
    day_old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    for result in db.session.scalars(select(ChecklistResult)):
        if result.item.kind is ChecklistItemKind.AUTOMATIC:
            result.checked_at = day_old
    db.session.commit()
    refused = post(client, site, "/sign-off")
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["message"].startswith("自动检测结果已超过 24 小时，请重新运行自动检测后再签字：")
    assert "分辨率不低于 720p" in body["stale"]
    assert body["current_status"] == "commissioning"

    assert post(client, site, "/checklist/automatic").status_code == 200
    signed = post(client, site, "/sign-off")
    assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["status"] == "live"


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


def test_parents_hear_the_suspension_and_their_watch_ends_with_it(client, site, app):
    centre = f.centre(site["district"], "已上线中心", status=CentreStatus.LIVE)
    centre.meal_windows[0].starts_at = dt.time(0, 0)
    centre.meal_windows[0].ends_at = dt.time(23, 59, 59)
    camera = f.camera(centre, AreaKind.COOKING)
    parent = f.parent_of(centre)
    elsewhere = f.parent_of(f.centre(site["district"], "别家中心"))
    db.session.commit()
    ph = f.login(client, parent.username)
    assert client.post(f"/api/v1/cameras/{camera.id}/watch", headers=ph).status_code == 200
    listening = socketio.test_client(app, namespace=NAMESPACE, auth={"token": bearer(ph)})
    other = socketio.test_client(
        app, namespace=NAMESPACE, auth={"token": bearer(f.login(client, elsewhere.username))}
    )
    assert listening.is_connected(NAMESPACE)

    suspended = client.post(
        f"/api/v1/centres/{centre.id}/suspension",
        json={"reason": "后厨整改期间暂停直播"},
        headers=site["inspector_h"],
    )
    assert suspended.status_code == 200
    heard = [m for m in listening.get_received(NAMESPACE) if m["name"] == "centre.suspended"]
    assert len(heard) == 1
    assert heard[0]["args"][0]["centre_id"] == centre.id
    assert heard[0]["args"][0]["reason"] == "后厨整改期间暂停直播"
    assert other.get_received(NAMESPACE) == []
    session = db.session.scalar(select(WatchSession).where(WatchSession.user_id == parent.id))
    assert session.ended_at == db.session.get(Centre, centre.id).status_changed_at

    client.delete(f"/api/v1/centres/{centre.id}/suspension", headers=site["inspector_h"])
    assert "centre.live" in [m["name"] for m in listening.get_received(NAMESPACE)]


def test_a_suspension_needs_a_reason(client, site):
    centre = f.centre(site["district"], status=CentreStatus.LIVE)
    db.session.commit()
    response = client.post(
        f"/api/v1/centres/{centre.id}/suspension", json={"reason": ""}, headers=site["inspector_h"]
    )
    assert response.status_code == 422


def _went_through(centre, *steps: tuple[CentreStatus, dt.datetime]) -> None:
    previous = None
    for status, at in steps:
        db.session.add(
            CentreStatusChange(centre_id=centre.id, from_status=previous, to_status=status, at=at)
        )
        previous = status


def _noon(day: str) -> dt.datetime:
    """Noon in Beijing on that day: well inside its month whatever the time zone."""
    return dt.datetime.fromisoformat(f"{day}T12:00:00+08:00")


def test_coverage_figures_match_a_hand_count(client, site):
    meilan = site["district"]
    yanfeng = f.district("演丰镇", parent=meilan)  # below Meilan: in the inspector's jurisdiction
    haikou_longhua = f.district("龙华区")
    shenzhen_longhua = f.district("龙华区")  # the same name in another city
    education = f.agency(meilan, AgencyKind.EDUCATION, prefix="美兰教整")
    yanfeng_market = f.agency(yanfeng, prefix="演丰市监整")
    longhua_market = f.agency(haikou_longhua, prefix="龙华市监整")
    jia = f.centre(meilan, "甲", status=CentreStatus.LIVE)
    yi = f.centre(meilan, "乙", status=CentreStatus.LIVE)
    f.centre(meilan, "丙", status=CentreStatus.INSTALLING)
    ding = f.centre(yanfeng, "丁", status=CentreStatus.SUSPENDED)
    f.centre(haikou_longhua, "海口外区", status=CentreStatus.LIVE)
    f.centre(shenzhen_longhua, "深圳外区", status=CentreStatus.COMMISSIONING)
    for kind in (AreaKind.PREP, AreaKind.COOKING):
        f.camera(jia, kind).status = CameraStatus.ONLINE
    switched_off = f.camera(jia, AreaKind.STORAGE)
    switched_off.status, switched_off.is_enabled = CameraStatus.ONLINE, False
    f.camera(yi, AreaKind.COOKING).status = CameraStatus.OFFLINE
    f.camera(yi, AreaKind.PREP).status = CameraStatus.STALLED
    f.camera(ding, AreaKind.WASHING).status = CameraStatus.STALLED
    INV, L, SUS = CentreStatus.INVITED, CentreStatus.LIVE, CentreStatus.SUSPENDED
    _went_through(jia, (INV, _noon("2026-01-05")), (L, _noon("2026-02-10")))  # 36 days
    _went_through(yi, (INV, _noon("2026-02-20")), (L, _noon("2026-04-15")))  # 54 days
    _went_through(
        ding, (INV, _noon("2026-01-10")), (L, _noon("2026-01-25")), (SUS, _noon("2026-05-01"))
    )
    db.session.commit()
    figures = client.get("/api/v1/coverage", headers=site["inspector_h"]).get_json()

    # By hand, the inspector's jurisdiction (Meilan and Yanfeng below it): the fixture's
    # invited centre, 甲 and 乙 live, 丙 installing, 丁 suspended.
    zero = {s.value: 0 for s in CentreStatus}
    centres = figures["centres"]
    assert centres["total"] == 5
    assert centres["by_status"] == {
        **zero,
        "invited": 1,
        "installing": 1,
        "live": 2,
        "suspended": 1,
    }
    assert centres["by_district"] == {
        str(meilan.id): {
            "name": "美兰区",
            "total": 4,
            "by_status": {**zero, "invited": 1, "installing": 1, "live": 2},
        },
        str(yanfeng.id): {"name": "演丰镇", "total": 1, "by_status": {**zero, "suspended": 1}},
    }
    everything_in_meilan = {**zero, "invited": 1, "installing": 1, "live": 2, "suspended": 1}
    assert centres["by_agency"] == {
        str(site["agency"].id): {
            "name": "美兰区市场监督管理局",
            "kind": "market_regulation",
            "district_id": meilan.id,
            "total": 5,
            "by_status": everything_in_meilan,
        },
        str(education.id): {
            "name": "美兰区教育局",
            "kind": "education",
            "district_id": meilan.id,
            "total": 5,
            "by_status": everything_in_meilan,
        },
        str(yanfeng_market.id): {
            "name": "演丰镇市场监督管理局",
            "kind": "market_regulation",
            "district_id": yanfeng.id,
            "total": 1,
            "by_status": {**zero, "suspended": 1},
        },
    }
    assert centres["enrolled"] == 3  # 甲, 乙, and 丁 (live once, suspended since)
    # Enabled cameras only: 甲's switched-off storage camera counts nowhere.
    assert figures["cameras"] == {
        "unknown": 0,
        "online": 2,
        "offline": 1,
        "stalled": 2,
        "tampered": 0,
    }
    # Live centres 甲 and 乙; only 甲's online cameras cover a room.
    assert figures["room_coverage"] == {
        "prep": {"live_centres": 2, "covered": 1},
        "storage": {"live_centres": 2, "covered": 0},
        "cooking": {"live_centres": 2, "covered": 1},
        "washing": {"live_centres": 2, "covered": 0},
    }
    assert figures["mean_days_to_commission"] == 35.0  # (36 + 54 + 15) / 3
    # 丁 in January, 甲 in February, none in March, 乙 in April; flat since, to this month.
    series = figures["enrolled_over_time"]
    assert series[:4] == [
        {"month": "2026-01", "enrolled": 1},
        {"month": "2026-02", "enrolled": 2},
        {"month": "2026-03", "enrolled": 2},
        {"month": "2026-04", "enrolled": 3},
    ]
    this_month = dt.datetime.now(dt.UTC).astimezone(CENTRE_TZ).strftime("%Y-%m")
    assert series[-1]["month"] == this_month
    assert {point["enrolled"] for point in series[3:]} == {3}
    assert len({point["month"] for point in series}) == len(series)

    # An admin sees every centre and agency; the two districts named 龙华区 stay apart.
    admin_view = client.get("/api/v1/coverage", headers=site["admin_h"]).get_json()["centres"]
    assert admin_view["total"] == 7
    assert admin_view["by_district"][str(haikou_longhua.id)] == {
        "name": "龙华区",
        "total": 1,
        "by_status": {**zero, "live": 1},
    }
    assert admin_view["by_district"][str(shenzhen_longhua.id)] == {
        "name": "龙华区",
        "total": 1,
        "by_status": {**zero, "commissioning": 1},
    }
    assert admin_view["by_agency"][str(longhua_market.id)]["total"] == 1
    assert str(longhua_market.id) not in centres["by_agency"]


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
            "rule": {"evidence": "photo"},
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
    hood = next(i for i in fresh["items"] if i["code"] == "hood_photo")
    no_photo = client.post(
        f"/api/v1/centres/{centre_id}/checklist/items/{hood['item_id']}",
        data={"note": "已清洁"},
        headers=site["th"],
        content_type="multipart/form-data",
    )
    assert no_photo.status_code == 422
    assert no_photo.get_json()["message"] == "“排烟罩清洁照片”需要上传照片"


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
        (
            {"items": [{"code": "hood_photo", "title": "排烟罩清洁", "kind": "manual"}]},
            "人工检查项 hood_photo 须注明佐证材料 evidence："
            "photo（照片）、statement（签字确认书照片）、note（文字说明）",
        ),
        (
            {
                "items": [
                    {
                        "code": "hood_photo",
                        "title": "排烟罩清洁",
                        "kind": "manual",
                        "rule": {"evidence": "video"},
                    }
                ]
            },
            "人工检查项 hood_photo 须注明佐证材料",
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
