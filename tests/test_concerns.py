"""Parents' concerns, through the API as the parent, the operator and the inspectors use it:
submitting with photos, retries and limits, triage with its legal clocks, who is told, and who
learns who reported."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app.extensions import db, socketio
from app.models import (
    Attachment,
    Concern,
    ConcernEvent,
    Finding,
    FindingCategory,
    NoticeStatus,
    Notification,
    RectificationNotice,
    Severity,
)
from app.realtime import NAMESPACE
from app.services import concerns, uploads
from tests import factories as f
from tests.test_concurrency import _parallel
from tests.test_notices import noisy_png, png
from tests.test_notices import published as _published_fixture
from tests.test_parents import World
from tests.test_parents import world as _world_fixture

BEIJING = ZoneInfo("Asia/Shanghai")

# The people and places of test_parents.py, and the captured domain events of test_notices.py.
world = _world_fixture
published = _published_fixture
SUBMIT = "/api/v1/parent/concerns"


def submit(
    client,
    world: World,
    who: str = "parent",
    centre: str = "a",
    photos: int = 0,
    client_key: str | None = None,
    **form,
):
    data = {
        "centre_id": str(world[centre].id),
        "text": "厨房垃圾桶没有盖子，苍蝇很多",
        "client_key": client_key or uuid.uuid4().hex,
        **form,
    }
    if photos:
        colours = ["red", "green", "blue", "white", "black", "yellow", "orange", "purple"]
        data["photos"] = [
            (io.BytesIO(png(colours[n % len(colours)], (64 + n, 48))), f"p{n}.png")
            for n in range(photos)
        ]
    return client.post(SUBMIT, data=data, headers=world.h(who), content_type="multipart/form-data")


def submitted(client, world: World, **kwargs) -> dict:
    response = submit(client, world, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def triage(client, world: World, concern_id: int, action: str, who: str = "inspector", **body):
    return client.post(
        f"/api/v1/inspector/concerns/{concern_id}/{action}", json=body, headers=world.h(who)
    )


def as_parent(client, world: World, concern_id: int, who: str = "parent") -> dict:
    response = client.get(f"/api/v1/parent/concerns/{concern_id}", headers=world.h(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def fetch(client, url: str, headers: dict[str, str]):
    """GET a file and close the response (it streams from an open file)."""
    response = client.get(url, headers=headers)
    response.get_data()
    response.close()
    return response


def count(model) -> int:
    db.session.commit()  # a fresh read, not this session's earlier snapshot
    return db.session.scalar(select(func.count()).select_from(model))


def beijing(year: int, month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=BEIJING)


# --- submitting ----------------------------------------------------------------------------


def test_a_parent_submits_a_concern_with_two_photos(app, client, world):
    area = next(a for a in world["a"].areas if a.kind.value == "cooking")
    concern = submitted(client, world, photos=2, area_id=str(area.id))
    assert concern["status"] == "submitted"
    assert concern["status_label"] == "已提交，待受理"
    assert concern["area_name"] == "操作间"
    assert concern["photo_count"] == 2
    assert concern["decide_by"] < concern["resolve_by"]
    assert concern["overdue"] is False
    stored = db.session.scalars(select(Attachment).where(Attachment.concern_id == concern["id"]))
    assert sorted(a.sha256 for a in stored) == sorted(p["sha256"] for p in concern["photos"])
    photo = fetch(
        client,
        f"/api/v1/parent/concerns/{concern['id']}/photos/{concern['photos'][0]['id']}",
        world.h("parent"),
    )
    assert photo.status_code == 200
    assert photo.mimetype == "image/png"
    assert hashlib.sha256(photo.data).hexdigest() == concern["photos"][0]["sha256"]


def test_a_retried_submit_returns_the_same_concern_and_stores_nothing_more(client, world):
    first = submit(client, world, photos=2, client_key="retry-key-1")
    assert first.status_code == 201
    again = submit(client, world, photos=2, client_key="retry-key-1")
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(Concern) == 1
    assert count(Attachment) == 2
    assert count(ConcernEvent) == 1
    told = select(func.count()).where(Notification.event == "concern.submitted")
    assert db.session.scalar(told) == 4  # the parent and three group chats, once each


def test_a_submit_sent_several_times_at_once_makes_one_concern(client, world):
    h = world.h("parent")
    form = {"centre_id": str(world["a"].id), "text": "重复提交", "client_key": "tap-tap-tap"}

    def send():
        return client.post(SUBMIT, data=form, headers=h, content_type="multipart/form-data")

    responses = _parallel([send] * 4)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert count(Concern) == 1


def test_submitting_too_often_is_refused_with_429(app, client, world):
    app.config["CONCERNS_PER_HOUR"] = 2
    submitted(client, world, client_key="one")
    submitted(client, world, client_key="two")
    third = submit(client, world, client_key="three")
    assert third.status_code == 429
    body = third.get_json()
    assert body["reason"] == "concern_rate"
    assert 0 < body["retry_after"] <= 3600
    assert count(Concern) == 2
    # A retry of one already made is still answered: it creates nothing.
    assert submit(client, world, client_key="two").status_code == 200


def test_the_rate_limit_counts_only_the_last_hour(app, client, world):
    app.config["CONCERNS_PER_HOUR"] = 2
    earlier = dt.datetime.now(BEIJING) - dt.timedelta(minutes=61)
    for n in range(2):
        data = concerns.ConcernInput(world["a"].id, f"早些时候的反映{n}", f"early-{n}")
        concerns.submit(world["parent"], data, [], now=earlier)
    assert submit(client, world).status_code == 201


def test_a_parent_of_centre_a_cannot_submit_about_centre_b(client, world):
    response = submit(client, world, centre="b", photos=1)
    assert response.status_code == 403
    assert count(Concern) == 0
    assert count(Attachment) == 0


def test_a_room_of_another_centre_is_refused(client, world):
    room_of_b = world["b"].areas[0]
    response = submit(client, world, area_id=str(room_of_b.id))
    assert response.status_code == 422
    assert response.get_json()["field"] == "area_id"


def test_a_concern_needs_text_and_a_client_key(client, world):
    h = world.h("parent")
    no_text = {"centre_id": str(world["a"].id), "text": "", "client_key": "k"}
    response = client.post(SUBMIT, data=no_text, headers=h, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.get_json()["field"] == "text"
    no_key = {"centre_id": str(world["a"].id), "text": "有问题"}
    response = client.post(SUBMIT, data=no_key, headers=h, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.get_json()["field"] == "client_key"


def test_the_concern_form_is_documented_as_it_is_read(client, world):
    """The form refuses fields it does not know and an empty text or key: the document says so
    (it used to let a client send both)."""
    form = client.get("/api/v1/openapi.json").get_json()["paths"][SUBMIT]["post"]
    schema = form["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["text"]["minLength"] == 1
    assert schema["properties"]["client_key"]["minLength"] == 1
    response = submit(client, world, mood="angry")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"mood": ["Unknown field."]}
    assert count(Concern) == 0


def test_a_concern_with_a_nul_character_or_a_photo_sent_as_text_is_refused(client, world):
    """NUL used to reach PostgreSQL (a 500 there); photos must come as files."""
    with_nul = submit(client, world, text="厨房\x00有问题")
    assert with_nul.status_code == 422
    assert with_nul.get_json()["fields"] == {"text": ["不能包含空字符（U+0000）"]}
    form = {"centre_id": str(world["a"].id), "text": "有问题", "client_key": "k", "photos": "x"}
    as_text = client.post(
        SUBMIT, data=form, headers=world.h("parent"), content_type="multipart/form-data"
    )
    assert as_text.status_code == 422
    assert as_text.get_json()["message"] == "照片须以文件形式上传"
    assert count(Concern) == 0


def test_a_non_image_among_the_photos_is_refused_and_nothing_is_stored(client, world):
    response = client.post(
        SUBMIT,
        data={
            "centre_id": str(world["a"].id),
            "text": "有问题",
            "client_key": "k-1",
            "photos": [(io.BytesIO(png()), "ok.png"), (io.BytesIO(b"MZ\x90\x00"), "x.jpg")],
        },
        headers=world.h("parent"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["message"] == "x.jpg不是可识别的图片"
    assert count(Concern) == 0
    assert count(Attachment) == 0


def _phone_photo(orientation: int) -> bytes:
    """A JPEG as phones take them: EXIF with the maker, the GPS position and an orientation."""
    picture = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (20.0, 1.0, 2.0),
    }
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_a_parents_photo_is_stored_without_where_it_was_taken(client, world):
    original = _phone_photo(orientation=6)  # taken with the phone turned
    assert b"PhoneMaker" in original
    response = client.post(
        SUBMIT,
        data={
            "centre_id": str(world["a"].id),
            "text": "孩子说饭菜有异味",
            "client_key": "exif-1",
            "photos": [(io.BytesIO(original), "IMG_0001.jpg")],
        },
        headers=world.h("parent"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    concern = response.get_json()
    detail = client.get(f"/api/v1/concerns/{concern['id']}", headers=world.h("inspector"))
    photo_id = detail.get_json()["photos"][0]["id"]
    seen = fetch(
        client, f"/api/v1/concerns/{concern['id']}/photos/{photo_id}", world.h("inspector")
    )
    assert seen.status_code == 200 and seen.mimetype == "image/jpeg"
    assert b"PhoneMaker" not in seen.data
    with Image.open(io.BytesIO(seen.data)) as picture:
        assert dict(picture.getexif()) == {}
        assert picture.size == (20, 40)  # turned upright for good
    assert hashlib.sha256(seen.data).hexdigest() == concern["photos"][0]["sha256"]


def test_ten_photos_are_too_many(client, world):
    response = submit(client, world, photos=10)
    assert response.status_code == 422
    assert response.get_json()["message"] == "最多上传 9 张照片"


# --- what each side sees -------------------------------------------------------------------


def test_a_parent_sees_only_their_own_concerns(client, world):
    mine = submitted(client, world)
    theirs = submitted(client, world, who="other_parent")
    listed = client.get(SUBMIT, headers=world.h("parent")).get_json()
    assert [c["id"] for c in listed] == [mine["id"]]
    other = client.get(f"/api/v1/parent/concerns/{theirs['id']}", headers=world.h("parent"))
    assert other.status_code == 404
    photo = client.get(
        f"/api/v1/parent/concerns/{theirs['id']}/photos/1", headers=world.h("parent")
    )
    assert photo.status_code == 404


def test_the_operator_sees_an_anonymous_concern_as_from_a_parent(client, world):
    concern = submitted(client, world, photos=2, anonymous="true")
    response = client.get("/api/v1/concerns", headers=world.h("operator"))
    [seen] = response.get_json()
    assert seen["id"] == concern["id"]
    assert seen["reporter"] == {"id": None, "name": "一位家长", "phone": None}
    assert seen["text"] == "厨房垃圾桶没有盖子，苍蝇很多"
    assert seen["photo_count"] == 2
    assert "photos" not in seen
    detail = client.get(f"/api/v1/concerns/{concern['id']}", headers=world.h("operator")).get_json()
    assert [e["actor_id"] for e in detail["history"]] == [None]
    parent = world["parent"]
    text = json.dumps(detail, ensure_ascii=False)
    for identity in (parent.display_name, parent.phone, parent.wechat_openid):
        assert identity not in text
    photo_id = concern["photos"][0]["id"]
    photo = client.get(
        f"/api/v1/concerns/{concern['id']}/photos/{photo_id}", headers=world.h("operator")
    )
    assert photo.status_code == 403


def test_the_operator_sees_the_name_of_a_parent_who_did_not_ask_for_anonymity(client, world):
    submitted(client, world)
    [seen] = client.get("/api/v1/concerns", headers=world.h("operator")).get_json()
    assert seen["reporter"] == {"id": None, "name": "张家长", "phone": None}


def test_inspectors_see_the_reporter_so_they_can_follow_up(client, world):
    concern = submitted(client, world, photos=1, anonymous="true")
    detail = client.get(
        f"/api/v1/concerns/{concern['id']}", headers=world.h("inspector")
    ).get_json()
    assert detail["reporter"] == {
        "id": world["parent"].id,
        "name": "张家长",
        "phone": "13800000001",
    }
    photo_id = detail["photos"][0]["id"]
    photo = fetch(
        client, f"/api/v1/concerns/{concern['id']}/photos/{photo_id}", world.h("inspector")
    )
    assert photo.status_code == 200
    assert hashlib.sha256(photo.data).hexdigest() == detail["photos"][0]["sha256"]


def test_the_operator_of_another_centre_sees_none_of_them(client, world):
    concern = submitted(client, world)
    h = world.h("operator_b")
    assert client.get("/api/v1/concerns", headers=h).get_json() == []
    assert client.get(f"/api/v1/concerns/{concern['id']}", headers=h).status_code == 403


def test_an_inspector_outside_the_jurisdiction_sees_none_of_them(client, world):
    concern = submitted(client, world)
    h = world.h("outsider")
    assert client.get("/api/v1/concerns", headers=h).get_json() == []
    assert client.get(f"/api/v1/concerns/{concern['id']}", headers=h).status_code == 403


# --- triage --------------------------------------------------------------------------------


def _finding_and_notice(world: World) -> tuple[Finding, RectificationNotice]:
    finding = Finding(
        centre_id=world["a"].id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description="操作间垃圾桶未加盖",
        recorded_by_id=world["colleague"].id,
    )
    notice = RectificationNotice(
        agency_id=world["market"].id,
        centre_id=world["a"].id,
        issuer_id=world["colleague"].id,
        status=NoticeStatus.ISSUED,
        year=2026,
        seq=9,
        number="美兰市监整〔2026〕9号",
        requirements="垃圾桶加盖",
        deadline=dt.date(2026, 12, 15),
    )
    notice.findings = [finding]
    db.session.add_all([finding, notice])
    db.session.commit()
    return finding, notice


def test_accepted_then_resolved_as_the_parent_sees_each_step(client, world):
    concern = submitted(client, world, anonymous="true")
    cid = concern["id"]

    accepted = triage(
        client, world, cid, "accept", assignee_id=world["colleague"].id, note="已安排核查"
    )
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["assignee"]["id"] == world["colleague"].id
    seen = as_parent(client, world, cid)
    assert (seen["status"], seen["status_label"]) == ("accepted", "已受理，正在处理")
    assert seen["decided_at"] is not None
    assert seen["answer"] is None
    assert seen["history"][-1]["reason"] == "已安排核查"
    assert "assignee" not in seen

    finding, notice = _finding_and_notice(world)
    resolved = triage(
        client,
        world,
        cid,
        "resolve",
        who="colleague",
        answer="经现场核查属实，已责令整改并复查合格。",
        finding_ids=[finding.id],
        notice_ids=[notice.id],
    )
    assert resolved.status_code == 200, resolved.get_json()
    assert resolved.get_json()["finding_ids"] == [finding.id]
    seen = as_parent(client, world, cid)
    assert (seen["status"], seen["status_label"]) == ("resolved", "已办结")
    assert seen["answer"] == "经现场核查属实，已责令整改并复查合格。"
    assert seen["closed_at"] is not None
    assert seen["notices"] == [
        {
            "id": notice.id,
            "number": "美兰市监整〔2026〕9号",
            "status": "issued",
            "status_label": "已下发",
        }
    ]
    assert [h["status"] for h in seen["history"]] == ["submitted", "accepted", "resolved"]
    assert (seen["overdue"], seen["decide_overdue"], seen["resolve_overdue"]) == (
        False,
        False,
        False,
    )


def test_a_dismissal_shows_its_reason_to_the_parent(client, world):
    concern = submitted(client, world)
    response = triage(
        client, world, concern["id"], "dismiss", reason="所反映情况不属于食品安全范畴"
    )
    assert response.status_code == 200
    seen = as_parent(client, world, concern["id"])
    assert (seen["status"], seen["status_label"]) == ("dismissed", "不予受理")
    assert seen["answer"] == "所反映情况不属于食品安全范畴"
    assert seen["closed_at"] is not None


def test_a_dismissal_needs_a_reason(client, world):
    concern = submitted(client, world)
    assert triage(client, world, concern["id"], "dismiss", reason="").status_code == 422


@pytest.mark.parametrize(
    ("steps", "action", "body", "current"),
    [
        ([], "resolve", {"answer": "已处理"}, "submitted"),
        (["accept"], "accept", {}, "accepted"),
        (["accept"], "dismiss", {"reason": "重复"}, "accepted"),
        (["dismiss"], "accept", {}, "dismissed"),
        (["dismiss"], "resolve", {"answer": "已处理"}, "dismissed"),
        (["accept", "resolve"], "resolve", {"answer": "再次办结"}, "resolved"),
    ],
)
def test_an_illegal_transition_is_409_with_the_current_status(
    client, world, steps, action, body, current
):
    concern = submitted(client, world)
    bodies = {"accept": {}, "dismiss": {"reason": "不属实"}, "resolve": {"answer": "已处理"}}
    for step in steps:
        assert triage(client, world, concern["id"], step, **bodies[step]).status_code == 200
    response = triage(client, world, concern["id"], action, **body)
    assert response.status_code == 409
    assert response.get_json()["current_status"] == current
    assert concerns.STATUS_LABELS[concerns.S(current)] in response.get_json()["message"]


@pytest.mark.parametrize(("who", "reason"), [("operator", "role"), ("parent", "role")])
def test_the_operator_and_the_parent_cannot_triage(client, world, who, reason):
    concern = submitted(client, world)
    response = triage(client, world, concern["id"], "accept", who=who)
    assert response.status_code == 403
    assert response.get_json()["reason"] == reason


def test_an_inspector_outside_the_jurisdiction_cannot_triage(client, world):
    concern = submitted(client, world)
    response = triage(client, world, concern["id"], "accept", who="outsider")
    assert response.status_code == 403
    assert response.get_json()["reason"] == "scope"


def test_another_agency_cannot_resolve_what_one_accepted(client, world):
    concern = submitted(client, world)
    triage(client, world, concern["id"], "accept")
    response = triage(client, world, concern["id"], "resolve", who="edu_inspector", answer="好")
    assert response.status_code == 403
    assert response.get_json()["reason"] == "other_agency"


def test_a_concern_is_assigned_only_within_the_agency(client, world):
    concern = submitted(client, world)
    response = triage(client, world, concern["id"], "accept", assignee_id=world["edu_inspector"].id)
    assert response.status_code == 422
    assert response.get_json()["field"] == "assignee_id"


def test_findings_of_another_centre_cannot_resolve_a_concern(client, world):
    concern = submitted(client, world)
    triage(client, world, concern["id"], "accept")
    elsewhere = Finding(
        centre_id=world["b"].id,
        category=FindingCategory.OTHER,
        severity=Severity.III,
        description="别处的问题",
    )
    db.session.add(elsewhere)
    db.session.commit()
    response = triage(
        client, world, concern["id"], "resolve", answer="已处理", finding_ids=[elsewhere.id]
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "finding_ids"


# --- clocks --------------------------------------------------------------------------------


def test_the_clocks_count_working_days_across_national_day(client, world):
    # 2026: 1–7 October off, Saturday 10 October worked. From Wednesday 30 September, seven
    # working days are 8, 9, 10, 12, 13, 14, 15 October; fifteen end on Tuesday 27 October
    # (16, 19, 20, 21, 22, 23, 26, 27).
    data = concerns.ConcernInput(world["a"].id, "节前反映的问题", "before-holiday")
    made = concerns.submit(world["parent"], data, [], now=beijing(2026, 9, 30))
    seen = as_parent(client, world, made.view["id"])
    assert (seen["decide_by"], seen["resolve_by"]) == ("2026-10-15", "2026-10-27")
    assert seen["deadline_provisional"] is False


def test_the_overdue_flags_follow_the_clocks_through_triage(world):
    parent, inspector = world["parent"], world["inspector"]
    data = concerns.ConcernInput(world["a"].id, "节前反映的问题", "before-holiday")
    cid = concerns.submit(parent, data, [], now=beijing(2026, 9, 30)).view["id"]

    def flags(at: dt.datetime) -> tuple[bool, bool]:
        seen = concerns.get_for_parent(parent, cid, now=at)
        return seen["decide_overdue"], seen["resolve_overdue"]

    assert flags(beijing(2026, 10, 15, 23)) == (False, False)  # the last day to decide
    assert flags(beijing(2026, 10, 16, 9)) == (True, False)
    concerns.accept(inspector, cid, now=beijing(2026, 10, 16, 10))
    assert flags(beijing(2026, 10, 27, 23)) == (False, False)  # the last day to resolve
    assert flags(beijing(2026, 10, 28, 9)) == (False, True)
    concerns.resolve(inspector, cid, "已督促整改", now=beijing(2026, 10, 28, 10))
    assert flags(beijing(2026, 11, 30)) == (False, False)


def test_a_clock_reaching_a_year_without_a_calendar_is_provisional(client, world):
    # chinese-calendar knows 2026 at most; 15 working days from 20 December reach 2027.
    data = concerns.ConcernInput(world["a"].id, "年底反映的问题", "year-end")
    made = concerns.submit(world["parent"], data, [], now=beijing(2026, 12, 20))
    assert made.view["resolve_by"].year == 2027
    assert made.view["deadline_provisional"] is True


def test_inspectors_list_the_overdue_concerns(client, world):
    late = submitted(client, world, client_key="late")
    submitted(client, world, client_key="on-time")
    row = db.session.get(Concern, late["id"])
    row.decide_by = dt.datetime.now(BEIJING).date() - dt.timedelta(days=1)
    db.session.commit()
    listed = client.get("/api/v1/concerns?overdue=true", headers=world.h("inspector")).get_json()
    assert [(c["id"], c["decide_overdue"], c["overdue"]) for c in listed] == [
        (late["id"], True, True)
    ]
    everything = client.get("/api/v1/concerns", headers=world.h("inspector")).get_json()
    assert len(everything) == 2
    assert everything[0]["id"] == late["id"]  # the nearest clock first


# --- who is told ---------------------------------------------------------------------------


def test_the_parent_is_told_in_chat_at_each_step(client, world, published):
    concern = submitted(client, world)
    triage(client, world, concern["id"], "accept", assignee_id=world["colleague"].id)
    triage(client, world, concern["id"], "resolve", who="colleague", answer="已整改")
    to_parent = db.session.scalars(
        select(Notification)
        .where(Notification.recipient_id == world["parent"].id)
        .order_by(Notification.id)
    ).all()
    assert [n.event for n in to_parent] == [
        "concern.submitted",
        "concern.accepted",
        "concern.resolved",
    ]
    assert to_parent[-1].payload["status_label"] == "已办结"
    assert to_parent[-1].payload["answer"] == "已整改"
    assigned = db.session.scalar(
        select(Notification).where(Notification.event == "concern.assigned")
    )
    assert assigned.recipient_id == world["colleague"].id
    events = [(name, data) for name, data in published if name.startswith("concern.")]
    assert [name for name, _ in events] == [
        "concern.submitted",
        "concern.accepted",
        "concern.resolved",
    ]
    assert {data["parent_id"] for _, data in events} == {world["parent"].id}


def test_a_new_concern_reaches_the_agency_groups_without_the_reporter(client, world):
    concern = submitted(client, world, photos=1)
    rows = db.session.scalars(
        select(Notification).where(
            Notification.event == "concern.submitted", Notification.destination.is_not(None)
        )
    ).all()
    assert {r.destination for r in rows} == {"meilan-market", "meilan-ding", "meilan-edu"}
    parent = world["parent"]
    for row in rows:
        assert row.payload["concern_id"] == concern["id"]
        assert row.payload["photo_count"] == 1
        assert "parent_id" not in row.payload
        text = json.dumps(row.payload, ensure_ascii=False)
        for identity in (parent.display_name, parent.phone, parent.wechat_openid):
            assert identity not in text


def _listen(app, client, user):
    token = f.login(client, user.username)["Authorization"].split()[1]
    return socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})


def test_realtime_events_to_staff_rooms_carry_no_reporter(app, client, world):
    operator = _listen(app, client, world["operator"])
    inspector = _listen(app, client, world["edu_inspector"])
    parent = _listen(app, client, world["parent"])
    other_parent = _listen(app, client, world["other_parent"])
    concern = submitted(client, world, anonymous="true")

    def heard(listener) -> list[dict]:
        return [
            m["args"][0]
            for m in listener.get_received(NAMESPACE)
            if m["name"] == "concern.submitted"
        ]

    for staff in (operator, inspector):
        [event] = heard(staff)
        assert event["concern_id"] == concern["id"]
        assert "parent_id" not in event
    [own] = heard(parent)
    assert own["parent_id"] == world["parent"].id
    assert heard(other_parent) == []


def test_a_dismissal_tells_the_parent_in_chat_and_in_their_open_app(app, client, world):
    concern = submitted(client, world)
    parent_app = _listen(app, client, world["parent"])
    operator_app = _listen(app, client, world["operator"])
    response = triage(
        client, world, concern["id"], "dismiss", reason="所反映情况不属于食品安全范畴"
    )
    assert response.status_code == 200
    [told] = db.session.scalars(
        select(Notification).where(
            Notification.recipient_id == world["parent"].id,
            Notification.event == "concern.dismissed",
        )
    ).all()
    assert told.payload["status_label"] == "不予受理"
    assert told.payload["reason"] == "所反映情况不属于食品安全范畴"
    [event] = [
        m["args"][0] for m in parent_app.get_received(NAMESPACE) if m["name"] == "concern.dismissed"
    ]
    assert (event["concern_id"], event["status"], event["parent_id"]) == (
        concern["id"],
        "dismissed",
        world["parent"].id,
    )
    [to_staff] = [
        m["args"][0]
        for m in operator_app.get_received(NAMESPACE)
        if m["name"] == "concern.dismissed"
    ]
    assert "parent_id" not in to_staff


@pytest.mark.parametrize("status", [NoticeStatus.DRAFT, NoticeStatus.WITHDRAWN])
def test_a_concern_cannot_be_resolved_with_a_notice_never_issued(client, world, status):
    concern = submitted(client, world)
    assert triage(client, world, concern["id"], "accept").status_code == 200
    _, notice = _finding_and_notice(world)
    notice.status = status
    db.session.commit()
    response = triage(
        client, world, concern["id"], "resolve", answer="已下发整改通知", notice_ids=[notice.id]
    )
    assert response.status_code == 422
    body = response.get_json()
    assert (body["field"], body["message"]) == (
        "notice_ids",
        "所选整改通知不属于该托管机构或尚未下发",
    )
    seen = as_parent(client, world, concern["id"])
    assert (seen["status"], seen["notices"], seen["answer"]) == ("accepted", [], None)


# --- the parent's phone --------------------------------------------------------------------


def test_a_phone_the_parent_gave_reaches_the_inspectors_and_never_the_operator(client, world):
    given = client.patch(
        "/api/v1/parent/me", json={"phone": "139 0898 0001"}, headers=world.h("other_parent")
    )
    assert given.status_code == 200
    anonymous = submitted(client, world, who="other_parent", anonymous="true")
    named = submitted(client, world, who="other_parent")
    for concern in (anonymous, named):
        detail = client.get(
            f"/api/v1/concerns/{concern['id']}", headers=world.h("inspector")
        ).get_json()
        assert detail["reporter"]["phone"] == "13908980001"
    listed = client.get("/api/v1/concerns", headers=world.h("operator")).get_json()
    assert {c["id"]: c["reporter"]["name"] for c in listed} == {
        anonymous["id"]: "一位家长",
        named["id"]: "李家长",
    }
    for concern in (anonymous, named):
        detail = client.get(
            f"/api/v1/concerns/{concern['id']}", headers=world.h("operator")
        ).get_json()
        assert detail["reporter"]["phone"] is None
    seen_by_operator = json.dumps(listed, ensure_ascii=False)
    assert "13908980001" not in seen_by_operator


# --- how large a concern may be ------------------------------------------------------------


def _post_large_form(client, world: World, fields: dict, photos: list[tuple[bytes, str]]):
    """POST a concern form encoded in memory (the test client spools a large form to a
    temporary file it never closes)."""
    values = MultiDict(fields)
    for data, name in photos:
        values.add("photos", FileStorage(io.BytesIO(data), filename=name))
    boundary, body = encode_multipart(values)
    return client.post(
        SUBMIT,
        data=body,
        headers=world.h("parent"),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def _stored_files(app) -> list:
    root = Path(app.config["UPLOAD_ROOT"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_photo_over_the_per_photo_limit_is_refused_and_nothing_is_stored(app, client, world):
    limit = app.config["UPLOAD_MAX_BYTES"]
    big = noisy_png(1900, 1900)  # incompressible: over 10 MB as a PNG
    assert len(big) > limit
    response = _post_large_form(
        client,
        world,
        {"centre_id": str(world["a"].id), "text": "厨房地面湿滑", "client_key": "too-big"},
        [(png(), "small.png"), (big, "IMG_0002.png")],
    )
    assert response.status_code == 422
    assert response.get_json() == {
        "error": "unprocessable",
        "message": f"IMG_0002.png超过 {limit // (1024 * 1024)} MB 的大小限制",
        "field": "photos",
    }
    assert count(Concern) == 0
    assert count(Attachment) == 0
    assert _stored_files(app) == []


def test_nine_photos_each_at_the_per_photo_limit_fit_in_one_concern(app, client, world):
    # Scaled down to keep the test quick: photos just under the per-photo limit, nine of them
    # together far above MAX_CONTENT_LENGTH (which stays the limit of other bodies).
    app.config["UPLOAD_MAX_BYTES"] = 300_000
    app.config["MAX_CONTENT_LENGTH"] = 1_000_000
    photos = [noisy_png(310, 310) for _ in range(concerns.MAX_PHOTOS)]
    assert all(280_000 < len(p) <= 300_000 for p in photos)
    assert sum(map(len, photos)) > app.config["MAX_CONTENT_LENGTH"]
    response = _post_large_form(
        client,
        world,
        {"centre_id": str(world["a"].id), "text": "九张照片", "client_key": "nine-photos"},
        [(p, f"p{n}.png") for n, p in enumerate(photos)],
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["photo_count"] == concerns.MAX_PHOTOS


def test_photos_together_over_the_form_limit_are_413_and_nothing_is_stored(app, client, world):
    app.config["UPLOAD_MAX_BYTES"] = 100_000
    too_much = uploads.photo_form_limit() + 1
    response = _post_large_form(
        client,
        world,
        {"centre_id": str(world["a"].id), "text": "照片太多", "client_key": "way-too-big"},
        [(b"\xff" * too_much, "huge.jpg")],
    )
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "payload_too_large"
    assert body["message"].startswith("照片总大小超过上限：每张照片不超过 ")
    assert count(Concern) == 0
    assert _stored_files(app) == []


def test_a_json_body_keeps_the_smaller_limit(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    concern = submitted(client, world)
    triage(client, world, concern["id"], "accept")
    response = triage(client, world, concern["id"], "resolve", answer="已处理" * 1000)
    assert response.status_code == 413
    assert response.get_json() == {"error": "payload_too_large", "message": "提交的内容过大"}


def test_a_form_carries_at_least_the_photos_a_concern_may_have():
    assert concerns.MAX_PHOTOS <= uploads.MAX_PHOTOS_PER_FORM
