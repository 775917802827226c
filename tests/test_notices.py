"""The patrol → rectification notice → follow-up → review loop, through the API as the
inspector and the operator use it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import chinese_calendar
import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AreaKind,
    Attachment,
    Channel,
    NoticeEvent,
    Notification,
    Patrol,
    RectificationNotice,
)
from app.services import base as events
from app.services import notices, reports
from tests import factories as f
from tests.conftest import count_statements


def png(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_png(width: int, height: int) -> bytes:
    """A photo-like PNG that does not compress away."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def loop(app, client):
    meilan = f.district("美兰区")
    market = f.agency(meilan, prefix="美兰市监整")
    market.chat_destinations = {"wecom_robot": "meilan-market", "dingtalk_robot": "meilan-ding"}
    centre = f.centre(meilan, "阳光小树苗托管中心")
    other_centre = f.centre(meilan, "启航午托部")
    inspector = f.inspector_of(market)
    inspector.wecom_userid = "wang.jianguan"
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator-openid"
    db.session.commit()
    return {
        "centre": centre,
        "other_centre": other_centre,
        "agency": market,
        "inspector": inspector,
        "operator": operator,
        "inspector_h": f.login(client, inspector.username),
        "operator_h": f.login(client, operator.username),
    }


@pytest.fixture
def published():
    seen: list[tuple[str, dict]] = []

    def capture(name: str, data: dict) -> None:
        seen.append((name, data))

    events.subscribe(capture)
    yield seen
    events.unsubscribe(capture)


def patrol_with_finding(
    client, loop, *, prep_snapshot_id: int | None = None, finding_snapshot_ids: tuple = ()
) -> int:
    """An inspector patrols the four rooms remotely and finds an uncovered bin in the kitchen
    (optionally with a snapshot of the preparation room and snapshots of the bin)."""
    h = loop["inspector_h"]
    centre = loop["centre"]
    patrol = client.post(
        "/api/v1/inspector/patrols", json={"centre_id": centre.id, "mode": "remote"}, headers=h
    )
    assert patrol.status_code == 201, patrol.get_json()
    patrol_id = patrol.get_json()["id"]
    rooms = {a.kind: a.id for a in centre.areas}
    for kind in (AreaKind.PREP, AreaKind.STORAGE, AreaKind.WASHING):
        check = {"result": "ok"}
        if kind is AreaKind.PREP and prep_snapshot_id is not None:
            check.update(note="备餐间台面整洁，留样柜已上锁", snapshot_id=prep_snapshot_id)
        response = client.put(
            f"/api/v1/inspector/patrols/{patrol_id}/areas/{rooms[kind]}", json=check, headers=h
        )
        assert response.status_code == 200, response.get_json()
    finding = client.post(
        f"/api/v1/inspector/patrols/{patrol_id}/findings",
        json={
            "category": "hygiene",
            "severity": "II",
            "description": "操作间垃圾桶未加盖",
            "area_id": rooms[AreaKind.COOKING],
            "snapshot_ids": list(finding_snapshot_ids),
        },
        headers=h,
    )
    assert finding.status_code == 201, finding.get_json()
    ended = client.post(
        f"/api/v1/inspector/patrols/{patrol_id}/end", json={"summary": "一处问题"}, headers=h
    )
    assert ended.status_code == 200
    results = {c["area_id"]: c["result"] for c in ended.get_json()["area_checks"]}
    assert results[rooms[AreaKind.COOKING]] == "finding"
    assert list(results.values()).count("ok") == 3
    return finding.get_json()["id"]


def draft(client, loop, finding_id: int, **deadline) -> dict:
    body = {
        "centre_id": loop["centre"].id,
        "finding_ids": [finding_id],
        "requirements": "立即为垃圾桶加盖，并建立每日检查制度。",
        "legal_basis": "《中华人民共和国食品安全法》第五十四条",
        **(deadline or {"working_days": 5}),
    }
    response = client.post("/api/v1/inspector/notices", json=body, headers=loop["inspector_h"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def issued_notice(client, loop, *, finding_snapshot_ids: tuple = (), **deadline) -> dict:
    finding_id = patrol_with_finding(client, loop, finding_snapshot_ids=finding_snapshot_ids)
    notice = draft(client, loop, finding_id, **deadline)
    response = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/issue", headers=loop["inspector_h"]
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def answer(client, loop, notice_id: int, text: str = "已整改") -> dict:
    response = client.post(
        f"/api/v1/notices/{notice_id}/responses",
        data={"text": text},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def review(client, loop, notice_id: int, action: str, **body):  # type: ignore[no-untyped-def]
    """The inspector verifies or returns the latest answer; the raw response."""
    return client.post(
        f"/api/v1/inspector/notices/{notice_id}/{action}", json=body, headers=loop["inspector_h"]
    )


def kitchen_snapshot(centre, color: str = "white"):  # type: ignore[no-untyped-def]
    """A snapshot taken by the centre's kitchen (操作间) camera."""
    snapshot = f.snapshot(f.camera(centre, AreaKind.COOKING), color)
    db.session.commit()
    return snapshot


def test_the_whole_loop_from_patrol_finding_to_verified(client, loop, published):
    ih, oh = loop["inspector_h"], loop["operator_h"]
    notice = issued_notice(client, loop)
    year = notices.local_today().year
    assert notice["number"] == f"美兰市监整〔{year}〕1号"
    assert notice["status"] == "issued"
    assert notice["deadline"] is not None
    nid = notice["id"]

    inbox = client.get("/api/v1/notices", headers=oh).get_json()
    assert [n["number"] for n in inbox] == [notice["number"]]

    ack = client.post(f"/api/v1/notices/{nid}/acknowledge", headers=oh)
    assert ack.get_json()["status"] == "acknowledged"

    first = client.post(
        f"/api/v1/notices/{nid}/responses",
        data={"text": "已为垃圾桶加盖", "photos": [(io.BytesIO(png()), "bin.png")]},
        headers=oh,
        content_type="multipart/form-data",
    )
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["round"] == 1
    assert len(first.get_json()["photos"]) == 1

    returned = client.post(
        f"/api/v1/inspector/notices/{nid}/return",
        json={"mode": "live_video", "reason": "照片看不清桶盖，请补拍"},
        headers=ih,
    )
    assert returned.get_json()["status"] == "returned"

    second = client.post(
        f"/api/v1/notices/{nid}/responses",
        data={"text": "补拍桶盖照片", "photos": [(io.BytesIO(png("blue")), "lid.png")]},
        headers=oh,
        content_type="multipart/form-data",
    )
    assert second.get_json()["round"] == 2

    verified = client.post(
        f"/api/v1/inspector/notices/{nid}/verify",
        json={"mode": "live_video", "note": "视频复查已整改"},
        headers=ih,
    )
    body = verified.get_json()
    assert body["status"] == "verified"
    assert body["review_mode"] == "live_video"
    assert body["closed_at"] is not None
    assert [(h["from_status"], h["to_status"]) for h in body["history"]] == [
        (None, "draft"),
        ("draft", "issued"),
        ("issued", "acknowledged"),
        ("acknowledged", "responded"),
        ("responded", "returned"),
        ("returned", "responded"),
        ("responded", "verified"),
    ]
    assert body["history"][4]["reason"] == "照片看不清桶盖，请补拍"
    assert [(r["round"], r["accepted"]) for r in body["responses"]] == [(1, False), (2, True)]
    names = [name for name, _ in published if name.startswith("notice.")]
    assert names == [
        "notice.issued",
        "notice.acknowledged",
        "notice.responded",
        "notice.returned",
        "notice.responded",
        "notice.verified",
    ]


def test_issuing_tells_the_operator_in_chat_and_the_agency_groups(client, loop):
    notice = issued_notice(client, loop)
    rows = db.session.scalars(
        select(Notification).where(Notification.event == "notice.issued")
    ).all()
    targets = {(r.channel, r.recipient_id, r.destination) for r in rows}
    assert targets == {
        (Channel.WECHAT_MP, loop["operator"].id, None),
        (Channel.WECOM_ROBOT, None, "meilan-market"),
        (Channel.DINGTALK_ROBOT, None, "meilan-ding"),
    }
    assert all(r.payload["number"] == notice["number"] for r in rows)


def test_an_answer_tells_the_issuing_inspector_in_wecom(client, loop):
    notice = issued_notice(client, loop)
    client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    row = db.session.scalar(
        select(Notification).where(
            Notification.event == "notice.responded", Notification.channel == Channel.WECOM_APP
        )
    )
    assert row is not None and row.recipient_id == loop["inspector"].id


def _told(event: str) -> set[tuple[Channel, int | None, str | None]]:
    rows = db.session.scalars(select(Notification).where(Notification.event == event)).all()
    return {(r.channel, r.recipient_id, r.destination) for r in rows}


def test_a_returned_answer_tells_the_operator_and_the_agency_groups(client, loop):
    notice = issued_notice(client, loop)
    client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    returned = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/return",
        json={"mode": "live_video", "reason": "照片看不清桶盖，请补拍"},
        headers=loop["inspector_h"],
    )
    assert returned.status_code == 200, returned.get_json()
    assert _told("notice.returned") == {
        (Channel.WECHAT_MP, loop["operator"].id, None),
        (Channel.WECOM_ROBOT, None, "meilan-market"),
        (Channel.DINGTALK_ROBOT, None, "meilan-ding"),
    }


def test_numbers_are_per_agency_and_sequential(client, loop):
    first = issued_notice(client, loop)
    second = issued_notice(client, loop)
    year = notices.local_today().year
    assert (first["number"], second["number"]) == (
        f"美兰市监整〔{year}〕1号",
        f"美兰市监整〔{year}〕2号",
    )


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("verify", {"mode": "on_site"}),
        ("return", {"mode": "on_site", "reason": "不合格"}),
    ],
)
def test_reviewing_a_notice_not_yet_answered_is_409_with_the_current_state(
    client, loop, action, body
):
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/{action}", json=body, headers=loop["inspector_h"]
    )
    assert response.status_code == 409
    assert response.get_json()["current_status"] == "issued"
    assert "已下发" in response.get_json()["message"]


def test_issuing_twice_is_409_and_takes_no_second_number(client, loop):
    notice = issued_notice(client, loop)
    again = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/issue", headers=loop["inspector_h"]
    )
    assert again.status_code == 409
    assert again.get_json()["current_status"] == "issued"
    assert db.session.scalar(select(func.max(RectificationNotice.seq))) == 1


def test_acknowledging_twice_is_409(client, loop):
    notice = issued_notice(client, loop)
    url = f"/api/v1/notices/{notice['id']}/acknowledge"
    assert client.post(url, headers=loop["operator_h"]).status_code == 200
    second = client.post(url, headers=loop["operator_h"])
    assert second.status_code == 409
    assert second.get_json()["current_status"] == "acknowledged"


def test_a_verified_notice_cannot_be_answered_again(client, loop):
    notice = issued_notice(client, loop)
    nid = notice["id"]
    client.post(
        f"/api/v1/notices/{nid}/responses",
        data={"text": "已整改"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    client.post(
        f"/api/v1/inspector/notices/{nid}/verify",
        json={"mode": "on_site"},
        headers=loop["inspector_h"],
    )
    late = client.post(
        f"/api/v1/notices/{nid}/responses",
        data={"text": "再补充"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert late.status_code == 409
    assert late.get_json()["current_status"] == "verified"


def test_the_operator_cannot_issue_or_verify(client, loop):
    notice = issued_notice(client, loop)
    for action in ("issue", "verify"):
        response = client.post(
            f"/api/v1/inspector/notices/{notice['id']}/{action}",
            json={"mode": "on_site"} if action == "verify" else None,
            headers=loop["operator_h"],
        )
        assert response.status_code == 403


def test_the_inspector_cannot_answer_for_the_operator(client, loop):
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/notices/{notice['id']}/acknowledge", headers=loop["inspector_h"]
    )
    assert response.status_code == 403
    assert response.get_json()["reason"] == "role"


def test_the_operator_of_another_centre_cannot_see_or_acknowledge(client, loop):
    notice = issued_notice(client, loop)
    stranger = f.operator_of(loop["other_centre"])
    db.session.commit()
    h = f.login(client, stranger.username)
    assert client.get(f"/api/v1/notices/{notice['id']}", headers=h).status_code == 403
    response = client.post(f"/api/v1/notices/{notice['id']}/acknowledge", headers=h)
    assert response.status_code == 403
    assert client.get("/api/v1/notices", headers=h).get_json() == []


def test_an_inspector_of_another_agency_cannot_review(client, loop):
    notice = issued_notice(client, loop)
    education = f.agency(
        db.session.get(type(loop["agency"]), loop["agency"].id).district,
        f.AgencyKind.EDUCATION,
        prefix="美兰教整",
    )
    other = f.inspector_of(education)
    db.session.commit()
    response = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/withdraw",
        json={"reason": "误发"},
        headers=f.login(client, other.username),
    )
    assert response.status_code == 403
    assert response.get_json()["reason"] == "other_agency"


def test_a_parent_cannot_read_notice_details(client, loop):
    notice = issued_notice(client, loop)
    parent = f.parent_of(loop["centre"])
    db.session.commit()
    response = client.get(
        f"/api/v1/notices/{notice['id']}", headers=f.login(client, parent.username)
    )
    assert response.status_code == 403


def test_operators_never_see_drafts(client, loop):
    finding_id = patrol_with_finding(client, loop)
    notice = draft(client, loop, finding_id)
    assert client.get("/api/v1/notices", headers=loop["operator_h"]).get_json() == []
    response = client.get(f"/api/v1/notices/{notice['id']}", headers=loop["operator_h"])
    assert response.status_code == 404


def test_withdrawing_a_draft_needs_a_reason_and_closes_it(client, loop):
    finding_id = patrol_with_finding(client, loop)
    notice = draft(client, loop, finding_id)
    url = f"/api/v1/inspector/notices/{notice['id']}/withdraw"
    assert client.post(url, json={"reason": ""}, headers=loop["inspector_h"]).status_code == 422
    response = client.post(url, json={"reason": "问题已当场整改"}, headers=loop["inspector_h"])
    assert response.get_json()["status"] == "withdrawn"
    assert response.get_json()["number"] is None


def test_follow_ups_are_logged_on_the_notice(client, loop):
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/follow-ups",
        json={
            "kind": "phone",
            "happened_at": "2026-11-28T10:30:00+08:00",
            "contact": "李经营",
            "outcome": "已电话督促，承诺明日完成",
        },
        headers=loop["inspector_h"],
    )
    assert response.status_code == 201, response.get_json()
    detail = client.get(f"/api/v1/notices/{notice['id']}", headers=loop["inspector_h"])
    follow_ups = detail.get_json()["follow_ups"]
    assert [(x["kind"], x["contact"]) for x in follow_ups] == [("phone", "李经营")]
    assert follow_ups[0]["happened_at"].startswith("2026-11-28T02:30:00")


def test_a_follow_up_in_the_future_is_refused(client, loop):
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/follow-ups",
        json={
            "kind": "on_site",
            "happened_at": "2099-01-01T10:00:00+08:00",
            "contact": "李经营",
            "outcome": "现场检查",
        },
        headers=loop["inspector_h"],
    )
    assert response.status_code == 422


def test_a_draft_needs_exactly_one_kind_of_deadline(client, loop):
    finding_id = patrol_with_finding(client, loop)
    body = {"centre_id": loop["centre"].id, "finding_ids": [finding_id], "requirements": "整改"}
    response = client.post("/api/v1/inspector/notices", json=body, headers=loop["inspector_h"])
    assert response.status_code == 422
    both = {**body, "working_days": 3, "deadline": "2099-01-01"}
    response = client.post("/api/v1/inspector/notices", json=both, headers=loop["inspector_h"])
    assert response.status_code == 422


def test_findings_of_another_centre_cannot_go_into_a_notice(client, loop):
    finding_id = patrol_with_finding(client, loop)
    body = {
        "centre_id": loop["other_centre"].id,
        "finding_ids": [finding_id],
        "requirements": "整改",
        "working_days": 3,
    }
    response = client.post("/api/v1/inspector/notices", json=body, headers=loop["inspector_h"])
    assert response.status_code == 422
    assert response.get_json()["field"] == "finding_ids"


def test_the_notice_list_runs_as_many_queries_however_many_notices_it_shows(client, loop):
    url, headers = "/api/v1/notices?open=true", loop["inspector_h"]
    issued_notice(client, loop)
    with count_statements() as with_one:
        assert len(client.get(url, headers=headers).get_json()) == 1
    for _ in range(3):
        issued_notice(client, loop)
    with count_statements() as with_four:
        listed = client.get(url, headers=headers).get_json()
    assert [len(n["findings"]) for n in listed] == [1, 1, 1, 1]
    assert len(with_four) == len(with_one)


# --- review evidence, round by round ---------------------------------------------------------


def test_each_review_round_keeps_its_own_mode_and_snapshot(client, loop):
    """Returned after a live-video check with a snapshot, then verified on site with another:
    both rounds' evidence stays on the notice, each on its own answer."""
    notice = issued_notice(client, loop)
    nid = notice["id"]
    blurry = kitchen_snapshot(loop["centre"], "grey")
    lid_on = kitchen_snapshot(loop["centre"], "green")

    answer(client, loop, nid, "已为垃圾桶加盖")
    returned = review(
        client,
        loop,
        nid,
        "return",
        mode="live_video",
        snapshot_id=blurry.id,
        reason="视频中桶盖未盖严",
    )
    assert returned.status_code == 200, returned.get_json()
    answer(client, loop, nid, "已更换带盖垃圾桶")
    verified = review(client, loop, nid, "verify", mode="on_site", snapshot_id=lid_on.id)
    assert verified.status_code == 200, verified.get_json()

    detail = client.get(f"/api/v1/notices/{nid}", headers=loop["operator_h"]).get_json()
    rounds = [
        (r["round"], r["accepted"], r["review_mode"], r["review_snapshot_id"], r["review_note"])
        for r in detail["responses"]
    ]
    assert rounds == [
        (1, False, "live_video", blurry.id, "视频中桶盖未盖严"),
        (2, True, "on_site", lid_on.id, None),
    ]
    assert all(r["reviewer_id"] == loop["inspector"].id for r in detail["responses"])
    # The notice itself shows the latest review.
    assert (detail["review_mode"], detail["review_snapshot_id"]) == ("on_site", lid_on.id)


def test_a_review_snapshot_from_another_centre_is_refused(client, loop):
    notice = issued_notice(client, loop)
    answer(client, loop, notice["id"])
    elsewhere = kitchen_snapshot(loop["other_centre"])
    response = review(
        client, loop, notice["id"], "verify", mode="live_video", snapshot_id=elsewhere.id
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "snapshot_id"
    assert response.get_json()["message"] == "抓拍照片不属于此托管机构"
    detail = client.get(f"/api/v1/notices/{notice['id']}", headers=loop["inspector_h"])
    assert detail.get_json()["status"] == "responded"
    assert detail.get_json()["responses"][0]["review_snapshot_id"] is None


def test_retention_keeps_the_snapshot_of_an_earlier_review_round(app, client, loop):
    """The first round's evidence is no longer the notice's latest review: it must still count
    as evidence when old snapshots are purged."""
    from app.services import snapshots

    app.config["SNAPSHOT_RETENTION_DAYS"] = 30
    notice = issued_notice(client, loop)
    first = kitchen_snapshot(loop["centre"], "grey")
    answer(client, loop, notice["id"])
    review(
        client,
        loop,
        notice["id"],
        "return",
        mode="live_video",
        snapshot_id=first.id,
        reason="不清楚",
    )
    answer(client, loop, notice["id"])
    review(client, loop, notice["id"], "verify", mode="on_site")
    stale = db.session.get(type(first), first.id)
    stale.taken_at = stale.taken_at - dt.timedelta(days=90)
    db.session.commit()
    assert snapshots.purge_expired() == 0
    assert db.session.get(type(first), first.id) is not None


# --- escalation: supervisors told, on-site visit required ------------------------------------


@pytest.fixture
def supervisors(loop):
    """The agency's two section chiefs: one on WeCom, one reachable only through the group."""
    on_wecom = f.inspector_of(
        loop["agency"], display_name="赵科长", wecom_userid="zhao.kezhang", is_supervisor=True
    )
    in_group = f.inspector_of(
        loop["agency"], display_name="钱科长", phone="13800000001", is_supervisor=True
    )
    colleague = f.inspector_of(loop["agency"], display_name="孙监管", wecom_userid="sun.jianguan")
    db.session.commit()
    return {"on_wecom": on_wecom, "in_group": in_group, "colleague": colleague}


def escalated_notice(app, client, loop) -> dict:
    app.config["ESCALATION_GRACE_DAYS"] = 3
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 5)
    assert notices.mark_overdue() == [notice["id"]]
    assert notices.escalate_overdue() == [notice["id"]]
    return notice


def test_escalation_tells_the_supervisors_that_an_on_site_visit_is_needed(
    app, client, loop, supervisors
):
    from bots.render import GROUP, PERSON, render

    notice = escalated_notice(app, client, loop)
    rows = db.session.scalars(
        select(Notification).where(Notification.event == "notice.escalated")
    ).all()
    people = {r.recipient_id: r for r in rows if r.recipient_id is not None}
    assert set(people) == {
        loop["operator"].id,
        loop["inspector"].id,
        supervisors["on_wecom"].id,
    }
    assert people[supervisors["on_wecom"].id].channel is Channel.WECOM_APP
    told = render("notice.escalated", people[supervisors["on_wecom"].id].payload, audience=PERSON)
    assert f"通过 {notice['id']} 现场" in told.as_text()
    assert "须安排现场核查" in told.as_text()
    # The operator is told to answer, not to visit.
    operator_text = render(
        "notice.escalated", people[loop["operator"].id].payload, audience=PERSON
    ).as_text()
    assert f"整改 {notice['id']}" in operator_text
    assert "须安排现场核查" not in operator_text

    groups = [r for r in rows if r.recipient_id is None]
    assert {r.destination for r in groups} == {"meilan-market", "meilan-ding"}
    for row in groups:
        text = render("notice.escalated", row.payload, audience=GROUP).as_text()
        assert "@钱科长（13800000001） 请安排现场核查" in text
        assert "赵科长" not in text  # told in WeCom already
    detail = client.get(f"/api/v1/notices/{notice['id']}", headers=loop["inspector_h"])
    assert detail.get_json()["onsite_required"] is True
    assert detail.get_json()["status"] == "escalated"


def test_a_supervisor_without_a_group_robot_is_told_on_their_own_channel(app, client, loop):
    loop["agency"].chat_destinations = None
    chief = f.inspector_of(
        loop["agency"], display_name="钱科长", wechat_openid="o-qian", is_supervisor=True
    )
    db.session.commit()
    escalated_notice(app, client, loop)
    row = db.session.scalar(
        select(Notification).where(
            Notification.event == "notice.escalated", Notification.recipient_id == chief.id
        )
    )
    assert row is not None and row.channel is Channel.WECHAT_MP


def test_after_escalation_only_an_on_site_review_closes_the_notice(app, client, loop, supervisors):
    notice = escalated_notice(app, client, loop)
    answer(client, loop, notice["id"], "已整改，请复查")
    refused = review(client, loop, notice["id"], "verify", mode="live_video")
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "mode"
    assert refused.get_json()["message"] == (
        "该整改通知逾期未整改已上报，须现场复查，不能通过视频复查"
    )
    still = client.get(f"/api/v1/notices/{notice['id']}", headers=loop["inspector_h"]).get_json()
    assert still["status"] == "responded"
    assert still["responses"][0]["reviewed_at"] is None
    # What is seen on video to be wrong may still be sent back without a visit.
    returned = review(client, loop, notice["id"], "return", mode="live_video", reason="桶盖仍未盖")
    assert returned.status_code == 200
    assert returned.get_json()["status"] == "returned"
    answer(client, loop, notice["id"], "已重新整改")
    verified = review(client, loop, notice["id"], "verify", mode="on_site", note="现场核查已整改")
    assert verified.status_code == 200
    assert verified.get_json()["status"] == "verified"


def test_a_notice_never_escalated_may_be_reviewed_by_video(client, loop):
    notice = issued_notice(client, loop)
    answer(client, loop, notice["id"])
    verified = review(client, loop, notice["id"], "verify", mode="live_video")
    assert verified.status_code == 200
    assert verified.get_json()["onsite_required"] is False


# --- uploads ---------------------------------------------------------------------------------


def _nothing_stored(app, notice_id: int, status: str) -> None:
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    upload_root = Path(app.config["UPLOAD_ROOT"])
    assert not upload_root.exists() or not any(p.is_file() for p in upload_root.rglob("*"))
    assert db.session.get(RectificationNotice, notice_id).status.value == status


def test_a_non_image_upload_is_refused_and_nothing_is_stored(app, client, loop):
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={
            "text": "已整改",
            "photos": [
                (io.BytesIO(png()), "ok.png"),
                (io.BytesIO(b"%PDF-1.4 not a picture"), "fake.jpg"),
            ],
        },
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["message"] == "fake.jpg不是可识别的图片"
    _nothing_stored(app, notice["id"], "issued")


def test_an_oversized_photo_is_refused_and_nothing_is_stored(app, client, loop):
    app.config["UPLOAD_MAX_BYTES"] = 2000
    notice = issued_notice(client, loop)
    big = noisy_png(200, 200)
    assert len(big) > 2000
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改", "photos": [(io.BytesIO(big), "big.png")]},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "大小限制" in response.get_json()["message"]
    _nothing_stored(app, notice["id"], "issued")


def test_a_photo_sent_as_text_is_refused_not_dropped(app, client, loop):
    """It used to be ignored: the answer was stored without the picture the operator meant to
    attach, with a 201."""
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改", "photos": "data:image/png;base64,iVBORw0KGgo="},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "photos"
    assert response.get_json()["message"] == "照片须以文件形式上传"
    _nothing_stored(app, notice["id"], "issued")


def test_an_answer_with_a_nul_character_is_refused(app, client, loop):
    """PostgreSQL text cannot hold NUL: it used to be a 500 there."""
    notice = issued_notice(client, loop)
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改\x00"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "text"
    _nothing_stored(app, notice["id"], "issued")


def test_a_stored_photo_matches_its_sha256(app, client, loop):
    notice = issued_notice(client, loop)
    data = png("green")
    client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "已整改", "photos": [(io.BytesIO(data), "x.png")]},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    attachment = db.session.scalar(select(Attachment))
    stored = Path(app.config["UPLOAD_ROOT"]) / attachment.path
    assert stored.read_bytes() == data
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.content_type == "image/png"


def test_the_photos_of_an_answer_are_served_to_both_sides_of_the_notice(app, client, loop):
    first = issued_notice(client, loop)
    second = issued_notice(client, loop)
    data = png("green")
    answer = client.post(
        f"/api/v1/notices/{first['id']}/responses",
        data={"text": "已整改", "photos": [(io.BytesIO(data), "after.png")]},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    ).get_json()
    photo_id = answer["photos"][0]["id"]

    for headers in (loop["inspector_h"], loop["operator_h"]):
        response = client.get(f"/api/v1/notices/{first['id']}/photos/{photo_id}", headers=headers)
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.get_data() == data
        response.close()
    # The photo of one notice is not reachable through another.
    response = client.get(
        f"/api/v1/notices/{second['id']}/photos/{photo_id}", headers=loop["inspector_h"]
    )
    assert response.status_code == 404
    assert response.get_json()["message"] == "找不到该照片"


# --- documents -------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    """The document's text with the layout's spaces and line breaks taken out."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return "".join(text.split())


def pdf_images(data: bytes) -> list:
    return [image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]


def pdf_fonts(data: bytes) -> dict[str, bool]:
    """Each font the document uses → whether its glyphs are embedded in the file."""
    fonts: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is None and "/DescendantFonts" in font:
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            fonts[str(font["/BaseFont"])] = any(
                key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    return fonts


def assert_cjk_font_embedded(data: bytes) -> None:
    """The Chinese text is set in the Debian CJK font, embedded (as a subset); the only other
    font is reportlab's page default, one of the 14 every reader has."""
    fonts = pdf_fonts(data)
    cjk = {name: embedded for name, embedded in fonts.items() if "WenQuanYi" in name}
    assert cjk and all(cjk.values()), fonts
    assert set(fonts) - set(cjk) <= {"/Helvetica"}, fonts


def local_minute(iso: str) -> str:
    when = dt.datetime.fromisoformat(iso).astimezone(notices.LOCAL_TZ)
    return when.strftime("%Y年%m月%d日%H:%M")


def test_the_printed_notice_carries_everything_the_operator_must_act_on(client, loop):
    evidence = kitchen_snapshot(loop["centre"], "orange")
    notice = issued_notice(client, loop, finding_snapshot_ids=(evidence.id,))
    response = client.get(f"/api/v1/notices/{notice['id']}/notice.pdf", headers=loop["operator_h"])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    deadline = dt.date.fromisoformat(notice["deadline"])
    for expected in (
        "责令改正通知书",
        notice["number"],
        "阳光小树苗托管中心",
        "操作间垃圾桶未加盖",
        "依据：《中华人民共和国食品安全法》第五十四条",
        "整改要求：立即为垃圾桶加盖，并建立每日检查制度。",
        f"请于{deadline.year}年{deadline.month}月{deadline.day}日（5个工作日内）前完成整改",
        f"承办人：{loop['inspector'].display_name}",
        f"下发时间：{local_minute(notice['issued_at'])}",
        f"送达时间：{local_minute(notice['issued_at'])}",
        f"SHA-256：{evidence.sha256[:16]}",
    ):
        assert "".join(expected.split()) in text, expected
    images = pdf_images(response.data)
    assert [image.image.size for image in images] == [(320, 240)]
    assert_cjk_font_embedded(response.data)


def test_a_pdf_without_the_cjk_font_fails_under_test(app, monkeypatch):
    monkeypatch.setattr(reports, "FONT_CANDIDATES", ("/nonexistent/wqy-zenhei.ttc",))
    reports._font.cache_clear()
    try:
        with pytest.raises(reports.MissingFont, match="fonts-wqy-zenhei"):
            reports._font()
    finally:
        reports._font.cache_clear()


def test_a_pdf_without_the_cjk_font_logs_an_error_in_production(app, monkeypatch, caplog):
    monkeypatch.setattr(reports, "FONT_CANDIDATES", ("/nonexistent/wqy-zenhei.ttc",))
    monkeypatch.setattr(app, "testing", False)
    reports._font.cache_clear()
    try:
        assert reports._font() == "STSong-Light"
    finally:
        reports._font.cache_clear()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("fonts-wqy-zenhei" in r.getMessage() for r in errors)


def test_the_patrol_record_lists_rooms_and_findings(client, loop):
    patrol_with_finding(client, loop)
    patrol = db.session.scalar(select(Patrol))
    response = client.get(
        f"/api/v1/inspector/patrols/{patrol.id}/record.pdf", headers=loop["inspector_h"]
    )
    assert response.status_code == 200
    text = pdf_text(response.data)
    assert "巡查记录" in text
    assert "远程视频巡查" in text
    assert "操作间垃圾桶未加盖" in text
    assert pdf_images(response.data) == []


def test_the_patrol_record_embeds_the_room_and_finding_snapshots(client, loop):
    prep = f.snapshot(f.camera(loop["centre"], AreaKind.PREP), "yellow")
    bin_shot = kitchen_snapshot(loop["centre"], "orange")
    patrol_with_finding(client, loop, prep_snapshot_id=prep.id, finding_snapshot_ids=(bin_shot.id,))
    patrol = db.session.scalar(select(Patrol))
    response = client.get(
        f"/api/v1/inspector/patrols/{patrol.id}/record.pdf", headers=loop["inspector_h"]
    )
    assert response.status_code == 200
    text = pdf_text(response.data)
    assert "备餐间台面整洁，留样柜已上锁" in text
    assert f"SHA-256：{prep.sha256[:16]}" in text
    assert f"SHA-256：{bin_shot.sha256[:16]}" in text
    assert len(pdf_images(response.data)) == 2
    assert_cjk_font_embedded(response.data)


# --- the patrol log as JSON -------------------------------------------------------------------


def test_the_patrol_log_exports_rooms_findings_and_snapshots(client, loop):
    prep = f.snapshot(f.camera(loop["centre"], AreaKind.PREP), "yellow")
    bin_shot = kitchen_snapshot(loop["centre"], "orange")
    finding_id = patrol_with_finding(
        client, loop, prep_snapshot_id=prep.id, finding_snapshot_ids=(bin_shot.id,)
    )
    rooms = {a.id: a.kind.value for a in loop["centre"].areas}
    patrol_id = db.session.scalar(select(Patrol.id))

    one = client.get(f"/api/v1/inspector/patrols/{patrol_id}", headers=loop["inspector_h"])
    assert one.status_code == 200
    body = one.get_json()
    assert body["mode"] == "remote"
    assert body["summary"] == "一处问题"
    assert body["ended_at"] is not None
    checks = {
        rooms[c["area_id"]]: (c["result"], c["note"], c["snapshot_id"]) for c in body["area_checks"]
    }
    assert checks == {
        "prep": ("ok", "备餐间台面整洁，留样柜已上锁", prep.id),
        "storage": ("ok", "", None),
        "washing": ("ok", "", None),
        "cooking": ("finding", "", None),
    }
    assert [
        (
            x["id"],
            x["category"],
            x["severity"],
            x["description"],
            rooms[x["area_id"]],
            x["snapshot_ids"],
        )
        for x in body["findings"]
    ] == [(finding_id, "hygiene", "II", "操作间垃圾桶未加盖", "cooking", [bin_shot.id])]

    # A second, later patrol: the centre's log lists the newest first, each in full.
    later = client.post(
        "/api/v1/inspector/patrols",
        json={"centre_id": loop["centre"].id, "mode": "on_site"},
        headers=loop["inspector_h"],
    ).get_json()
    log = client.get(
        f"/api/v1/inspector/centres/{loop['centre'].id}/patrols", headers=loop["inspector_h"]
    )
    assert log.status_code == 200
    assert [(p["id"], p["mode"]) for p in log.get_json()] == [
        (later["id"], "on_site"),
        (patrol_id, "remote"),
    ]
    assert log.get_json()[1] == body


def test_a_room_snapshot_from_another_centre_is_refused(client, loop):
    elsewhere = kitchen_snapshot(loop["other_centre"])
    patrol = client.post(
        "/api/v1/inspector/patrols",
        json={"centre_id": loop["centre"].id, "mode": "remote"},
        headers=loop["inspector_h"],
    ).get_json()
    prep = next(a.id for a in loop["centre"].areas if a.kind is AreaKind.PREP)
    response = client.put(
        f"/api/v1/inspector/patrols/{patrol['id']}/areas/{prep}",
        json={"result": "ok", "snapshot_id": elsewhere.id},
        headers=loop["inspector_h"],
    )
    assert response.status_code == 422
    assert response.get_json()["message"] == "抓拍照片不属于此托管机构"


# --- clocks ----------------------------------------------------------------------------------


def _backdate_deadline(notice_id: int, days: int) -> None:
    notice = db.session.get(RectificationNotice, notice_id)
    notice.deadline = notices.local_today() - dt.timedelta(days=days)
    db.session.commit()


def test_the_overdue_job_moves_late_notices_once(app, client, loop):
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 1)
    assert notices.mark_overdue() == [notice["id"]]
    assert notices.mark_overdue() == []
    history = db.session.scalars(
        select(NoticeEvent.to_status).where(NoticeEvent.notice_id == notice["id"])
    ).all()
    assert [s.value for s in history].count("overdue") == 1
    # The operator, the issuing inspector and the agency's group robots.
    assert _told("notice.overdue") == {
        (Channel.WECHAT_MP, loop["operator"].id, None),
        (Channel.WECOM_APP, loop["inspector"].id, None),
        (Channel.WECOM_ROBOT, None, "meilan-market"),
        (Channel.DINGTALK_ROBOT, None, "meilan-ding"),
    }


def test_an_overdue_notice_is_still_answerable(client, loop):
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 1)
    notices.mark_overdue()
    response = client.post(
        f"/api/v1/notices/{notice['id']}/responses",
        data={"text": "迟到的整改回复"},
        headers=loop["operator_h"],
        content_type="multipart/form-data",
    )
    assert response.status_code == 201


def test_escalation_waits_for_the_grace_period_and_runs_once(app, client, loop):
    app.config["ESCALATION_GRACE_DAYS"] = 3
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 2)
    notices.mark_overdue()
    assert notices.escalate_overdue() == []
    _backdate_deadline(notice["id"], 5)
    assert notices.escalate_overdue() == [notice["id"]]
    assert notices.escalate_overdue() == []
    assert db.session.get(RectificationNotice, notice["id"]).status.value == "escalated"
    groups = db.session.scalars(
        select(Notification.destination).where(Notification.event == "notice.escalated")
    ).all()
    assert set(groups) >= {"meilan-market", "meilan-ding"}


def test_a_working_day_deadline_skips_the_national_day_holiday(client, loop, monkeypatch):
    """Issued on 30 September 2026 with 5 working days: the Golden Week holiday does not count
    and the Saturday make-up day does (State Council schedule, via chinese-calendar)."""
    issued_on = dt.date(2026, 9, 30)
    monkeypatch.setattr(notices, "local_today", lambda now=None: issued_on)
    expected, counted = issued_on, 0
    while counted < 5:
        expected += dt.timedelta(days=1)
        counted += chinese_calendar.is_workday(expected)
    weekdays_only, counted = issued_on, 0
    while counted < 5:
        weekdays_only += dt.timedelta(days=1)
        counted += weekdays_only.weekday() < 5
    assert expected != weekdays_only  # the holiday really is in the calendar data

    notice = issued_notice(client, loop, working_days=5)
    assert notice["deadline"] == expected.isoformat()
    assert notice["deadline_working_days"] == 5
    assert notice["deadline_provisional"] is False
    assert notice["number"] == "美兰市监整〔2026〕1号"
    inbox = client.get("/api/v1/notices", headers=loop["operator_h"]).get_json()
    assert [n["deadline"] for n in inbox] == [expected.isoformat()]


# --- the centre's record -------------------------------------------------------------------


def test_a_parent_sees_the_inspection_summary_without_the_details(client, loop):
    issued_notice(client, loop)
    late = issued_notice(client, loop)
    _backdate_deadline(late["id"], 1)
    assert notices.mark_overdue() == [late["id"]]
    verified = issued_notice(client, loop)
    answer(client, loop, verified["id"])
    assert review(client, loop, verified["id"], "verify", mode="on_site").status_code == 200
    parent = f.parent_of(loop["centre"])
    db.session.commit()
    response = client.get(
        f"/api/v1/centres/{loop['centre'].id}/record", headers=f.login(client, parent.username)
    )
    record = response.get_json()
    assert record["notices"] == {"open": 2, "overdue": 1, "verified": 1}
    assert record["last_patrol"]["result"] == "发现 1 个问题"
    assert "notice_list" not in record
    assert "patrols" not in record
    page = response.get_data(as_text=True)
    for detail in ("垃圾桶", late["number"], "已整改"):
        assert detail not in page


def test_the_inspector_sees_every_notice_with_its_whole_history(client, loop):
    snapshot = kitchen_snapshot(loop["centre"])
    notice = issued_notice(client, loop, finding_snapshot_ids=(snapshot.id,))
    nid = notice["id"]
    client.post(f"/api/v1/notices/{nid}/acknowledge", headers=loop["operator_h"])
    answer(client, loop, nid, "已为垃圾桶加盖")
    review(client, loop, nid, "return", mode="live_video", snapshot_id=snapshot.id, reason="未盖严")
    client.post(
        f"/api/v1/inspector/notices/{nid}/follow-ups",
        json={
            "kind": "phone",
            "happened_at": "2026-11-28T10:30:00+08:00",
            "contact": "李经营",
            "outcome": "已电话督促，承诺明日完成",
        },
        headers=loop["inspector_h"],
    )
    response = client.get(
        f"/api/v1/centres/{loop['centre'].id}/record", headers=loop["inspector_h"]
    )
    assert response.status_code == 200
    record = response.get_json()
    assert len(record["patrols"]) == 1
    assert record["notices"] == {"open": 1, "overdue": 0, "verified": 0}
    [entry] = record["notice_list"]
    assert (entry["number"], entry["status"], entry["status_label"]) == (
        notice["number"],
        "returned",
        "已退回重新整改",
    )
    inspector = loop["inspector"].display_name
    operator = loop["operator"].display_name
    assert [
        (h["actor"], h["from_status"], h["to_status"], h["reason"]) for h in entry["history"]
    ] == [
        (inspector, None, "draft", None),
        (inspector, "draft", "issued", None),
        (operator, "issued", "acknowledged", None),
        (operator, "acknowledged", "responded", None),
        (inspector, "responded", "returned", "未盖严"),
    ]
    assert all(h["at"] for h in entry["history"])
    assert [(x["description"], x["snapshot_ids"]) for x in entry["findings"]] == [
        ("操作间垃圾桶未加盖", [snapshot.id])
    ]
    [round_one] = entry["responses"]
    assert (round_one["author"], round_one["text"], round_one["accepted"]) == (
        operator,
        "已为垃圾桶加盖",
        False,
    )
    assert (round_one["reviewer"], round_one["review_mode"], round_one["review_snapshot_id"]) == (
        inspector,
        "live_video",
        snapshot.id,
    )
    assert [
        (x["kind"], x["contact"], x["outcome"], x["recorded_by"]) for x in entry["follow_ups"]
    ] == [("phone", "李经营", "已电话督促，承诺明日完成", inspector)]


def test_the_record_shows_the_system_as_the_one_who_marked_a_notice_overdue(client, loop):
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 1)
    notices.mark_overdue()
    record = client.get(
        f"/api/v1/centres/{loop['centre'].id}/record", headers=loop["inspector_h"]
    ).get_json()
    last = record["notice_list"][0]["history"][-1]
    assert (last["actor"], last["actor_id"], last["to_status"]) == ("系统", None, "overdue")
    assert last["reason"].startswith("已超过整改期限")


def test_the_record_runs_as_many_queries_however_many_notices_it_shows(client, loop):
    url = f"/api/v1/centres/{loop['centre'].id}/record"
    first = issued_notice(client, loop)
    answer(client, loop, first["id"])
    with count_statements() as with_one:
        assert len(client.get(url, headers=loop["inspector_h"]).get_json()["notice_list"]) == 1
    for _ in range(3):
        answer(client, loop, issued_notice(client, loop)["id"])
    with count_statements() as with_four:
        assert len(client.get(url, headers=loop["inspector_h"]).get_json()["notice_list"]) == 4
    assert len(with_four) == len(with_one)


def test_operators_do_not_see_a_draft_withdrawn_before_it_was_issued(client, loop):
    finding_id = patrol_with_finding(client, loop)
    notice = draft(client, loop, finding_id)
    withdrawn = client.post(
        f"/api/v1/inspector/notices/{notice['id']}/withdraw",
        json={"reason": "当场已整改"},
        headers=loop["inspector_h"],
    )
    assert withdrawn.get_json()["status"] == "withdrawn"
    oh = loop["operator_h"]
    assert client.get("/api/v1/notices", headers=oh).get_json() == []
    assert client.get(f"/api/v1/notices/{notice['id']}", headers=oh).status_code == 404
    record = client.get(f"/api/v1/centres/{loop['centre'].id}/record", headers=oh).get_json()
    assert record["notice_list"] == []


def test_the_periodic_clock_job_is_scheduled_and_marks_overdue(app, client, loop, runner):
    task = app.extensions["bk_tasks"]["legal_clocks"]
    assert task.s().validate_datetime(dt.datetime(2026, 11, 30, 9, 5))
    assert not task.s().validate_datetime(dt.datetime(2026, 11, 30, 9, 7))
    notice = issued_notice(client, loop)
    _backdate_deadline(notice["id"], 1)
    result = runner.invoke(args=["bk", "clocks"])
    assert result.exit_code == 0, result.output
    assert "逾期 1 件" in result.output
    db.session.expire_all()
    assert db.session.get(RectificationNotice, notice["id"]).status.value == "overdue"


def test_a_technician_and_another_agency_see_only_what_is_theirs_in_the_record(client, loop):
    """The full record is for those who read notices: a technician of the centre gets the
    summary, like a parent; an inspector of the other agency over the centre sees issued
    notices but not this agency's drafts."""
    issued = issued_notice(client, loop)
    unissued = draft(client, loop, patrol_with_finding(client, loop))
    technician = f.technician_for(loop["centre"])
    education = f.agency(loop["centre"].district, kind=f.AgencyKind.EDUCATION, prefix="美兰教整")
    teacher = f.inspector_of(education)
    db.session.commit()
    url = f"/api/v1/centres/{loop['centre'].id}/record"

    summary = client.get(url, headers=f.login(client, technician.username))
    assert summary.status_code == 200
    assert summary.get_json()["notices"]["open"] == 1
    assert "notice_list" not in summary.get_json() and "patrols" not in summary.get_json()
    assert "垃圾桶" not in summary.get_data(as_text=True)

    other = client.get(url, headers=f.login(client, teacher.username)).get_json()
    assert [n["id"] for n in other["notice_list"]] == [issued["id"]]
    own = client.get(url, headers=loop["inspector_h"]).get_json()
    assert {n["id"] for n in own["notice_list"]} == {issued["id"], unissued["id"]}
