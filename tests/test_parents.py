"""Parents and their centres, through the API as an operator and a parent use it: invite codes,
binding (and guessing, which is stopped), unlinking, and the centre page."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    AgencyKind,
    AreaKind,
    BindFailure,
    CameraStatus,
    InviteCode,
    ParentLink,
    Role,
    Snapshot,
    SnapshotReason,
    User,
    utcnow,
)
from app.services import parents, snapshots
from media import snapshot as media_snapshot
from tests import factories as f
from tests.conftest import count_statements
from tests.stubs.wechat import wechat_stub as _wechat_stub_fixture
from tests.test_concurrency import _parallel
from tests.test_watch import window_around_now, window_away_from_now

BEIJING = ZoneInfo("Asia/Shanghai")
BIND = "/api/v1/parent/bind"

wechat_stub = _wechat_stub_fixture


class World(dict):
    """The people and places of a test, with their Authorization headers made on first use."""

    def __init__(self, client, **items) -> None:
        super().__init__(**items)
        self._client = client
        self._headers: dict[str, dict[str, str]] = {}

    def h(self, who: str) -> dict[str, str]:
        if who not in self._headers:
            self._headers[who] = f.login(self._client, self[who].username)
        return self._headers[who]


@pytest.fixture
def world(app, client) -> World:
    """Meilan district: two centres regulated by its market and education bureaus (with their
    group chats); a Longhua bureau outside; one parent of each centre and one not yet linked."""
    meilan = f.district("美兰区")
    longhua = f.district("龙华区")
    market = f.agency(meilan, prefix="美兰市监整")
    market.chat_destinations = {"wecom_robot": "meilan-market", "dingtalk_robot": "meilan-ding"}
    education = f.agency(meilan, AgencyKind.EDUCATION, prefix="美兰教整")
    education.chat_destinations = {"feishu_robot": "meilan-edu"}
    longhua_market = f.agency(longhua, prefix="龙华市监整")
    a = f.centre(meilan, "阳光小树苗托管中心")
    b = f.centre(meilan, "启航午托部")
    cooking = f.camera(a, AreaKind.COOKING)
    storage = f.camera(a, AreaKind.STORAGE)
    operator = f.operator_of(a)
    operator.wechat_openid = "o-operator-a"
    inspector = f.inspector_of(market)
    inspector.wecom_userid = "wang.jianguan"
    colleague = f.inspector_of(market)
    colleague.wecom_userid = "li.jianguan"
    w = World(
        client,
        market=market,
        education=education,
        a=a,
        b=b,
        cooking=cooking,
        storage=storage,
        operator=operator,
        operator_b=f.operator_of(b),
        inspector=inspector,
        colleague=colleague,
        edu_inspector=f.inspector_of(education),
        outsider=f.inspector_of(longhua_market),
        technician=f.technician_for(a),
        admin=f.user(Role.ADMIN),
        parent=f.parent_of(a, display_name="张家长", phone="13800000001"),
        other_parent=f.parent_of(a, display_name="李家长"),
        parent_b=f.parent_of(b, display_name="王家长"),
        newcomer=f.parent_of(display_name="赵家长"),
    )
    db.session.commit()
    return w


def issue_code(client, world: World, who: str = "operator", centre: str = "a", **body) -> dict:
    response = client.post(
        f"/api/v1/centres/{world[centre].id}/invite-codes", json=body, headers=world.h(who)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def bind(client, headers: dict[str, str], code: str, ip: str = "127.0.0.1"):
    return client.post(BIND, json={"code": code}, headers=headers, environ_base={"REMOTE_ADDR": ip})


def uses_of(code: dict) -> int:
    db.session.commit()  # end this session's read snapshot: requests in other threads wrote
    return db.session.get(InviteCode, code["id"]).uses


# --- invite codes --------------------------------------------------------------------------


def test_an_operator_issues_a_code_with_its_qr_payload(app, client, world):
    code = issue_code(client, world, max_uses=30, expires_in_days=7)
    assert len(code["code"]) == 8
    assert set(code["code"]) <= set(parents.CODE_ALPHABET)
    assert code["qr_payload"] == f"{app.config['PUBLIC_URL']}/bind?code={code['code']}"
    assert (code["state"], code["state_label"]) == ("active", "有效")
    assert (code["max_uses"], code["uses"]) == (30, 0)
    expires = dt.datetime.fromisoformat(code["expires_at"])
    assert dt.timedelta(days=6, hours=23) < expires - utcnow() <= dt.timedelta(days=7)


def test_the_operator_lists_the_codes_of_their_centre_newest_first(client, world):
    first = issue_code(client, world)
    second = issue_code(client, world)
    listed = client.get(
        f"/api/v1/centres/{world['a'].id}/invite-codes", headers=world.h("operator")
    ).get_json()
    assert [c["id"] for c in listed] == [second["id"], first["id"]]


def test_an_operator_cannot_issue_codes_for_another_centre(client, world):
    response = client.post(
        f"/api/v1/centres/{world['b'].id}/invite-codes", json={}, headers=world.h("operator")
    )
    assert response.status_code == 403


@pytest.mark.parametrize("who", ["technician", "parent", "inspector"])
def test_only_the_operator_or_an_admin_issues_codes(client, world, who):
    response = client.post(
        f"/api/v1/centres/{world['a'].id}/invite-codes", json={}, headers=world.h(who)
    )
    assert response.status_code == 403
    assert response.get_json()["reason"] == "role"


def test_an_admin_issues_codes_for_any_centre(client, world):
    code = issue_code(client, world, who="admin", centre="b")
    assert code["centre_id"] == world["b"].id


def test_a_use_limit_outside_the_allowed_range_is_refused(client, world):
    response = client.post(
        f"/api/v1/centres/{world['a'].id}/invite-codes",
        json={"max_uses": 0},
        headers=world.h("operator"),
    )
    assert response.status_code == 422


# --- binding -------------------------------------------------------------------------------


def test_a_parent_binds_with_a_valid_code_and_can_then_read_the_centre(client, world):
    code = issue_code(client, world)
    h = world.h("newcomer")
    centre_url = f"/api/v1/centres/{world['a'].id}"
    assert client.get(centre_url, headers=h).status_code == 403
    response = bind(client, h, code["code"])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["centre_name"] == "阳光小树苗托管中心"
    assert client.get(centre_url, headers=h).status_code == 200
    mine = client.get("/api/v1/parent/centres", headers=h).get_json()
    assert [c["centre_id"] for c in mine] == [world["a"].id]
    assert uses_of(code) == 1


def test_a_code_may_be_typed_in_lower_case_with_spaces_and_dashes(client, world):
    code = issue_code(client, world)["code"]
    typed = f" {code[:4].lower()}-{code[4:].lower()} "
    assert bind(client, world.h("newcomer"), typed).status_code == 201


def test_binding_again_to_the_same_centre_takes_no_use(client, world):
    code = issue_code(client, world, max_uses=1)
    h = world.h("newcomer")
    assert bind(client, h, code["code"]).status_code == 201
    again = bind(client, h, code["code"])
    assert again.status_code == 200
    assert again.get_json()["centre_id"] == world["a"].id
    assert uses_of(code) == 1
    assert db.session.scalar(select(func.count()).select_from(BindFailure)) == 0


def test_a_parent_may_follow_several_centres(client, world):
    h = world.h("newcomer")
    assert bind(client, h, issue_code(client, world)["code"]).status_code == 201
    code_b = issue_code(client, world, who="operator_b", centre="b")
    assert bind(client, h, code_b["code"]).status_code == 201
    mine = client.get("/api/v1/parent/centres", headers=h).get_json()
    assert {c["centre_name"] for c in mine} == {"阳光小树苗托管中心", "启航午托部"}


def test_an_unknown_code_is_refused(client, world):
    response = bind(client, world.h("newcomer"), "ZZZZ9999")
    assert response.status_code == 404
    body = response.get_json()
    assert body["reason"] == "unknown_code"
    assert body["message"] == "邀请码不存在，请核对后重新输入"


def test_an_expired_code_is_refused(client, world):
    code = issue_code(client, world)
    db.session.execute(
        update(InviteCode)
        .where(InviteCode.id == code["id"])
        .values(expires_at=utcnow() - dt.timedelta(minutes=1))
    )
    db.session.commit()
    response = bind(client, world.h("newcomer"), code["code"])
    assert response.status_code == 409
    assert response.get_json()["reason"] == "expired"
    assert "已过期" in response.get_json()["message"]
    assert uses_of(code) == 0


def test_a_used_up_code_is_refused(client, world):
    code = issue_code(client, world, max_uses=1)
    assert bind(client, world.h("newcomer"), code["code"]).status_code == 201
    stranger = f.parent_of(display_name="钱家长")
    db.session.commit()
    response = bind(client, f.login(client, stranger.username), code["code"])
    assert response.status_code == 409
    assert response.get_json()["reason"] == "used_up"
    assert "次数已满" in response.get_json()["message"]
    assert uses_of(code) == 1


def test_a_revoked_code_is_refused_and_revoking_again_changes_nothing(client, world):
    code = issue_code(client, world)
    url = f"/api/v1/invite-codes/{code['id']}/revoke"
    revoked = client.post(url, headers=world.h("operator")).get_json()
    assert (revoked["state"], revoked["state_label"]) == ("revoked", "已作废")
    again = client.post(url, headers=world.h("operator")).get_json()
    assert again["revoked_at"] == revoked["revoked_at"]
    response = bind(client, world.h("newcomer"), code["code"])
    assert response.status_code == 409
    assert response.get_json()["reason"] == "revoked"
    assert "已作废" in response.get_json()["message"]


def test_the_operator_of_another_centre_cannot_revoke_a_code(client, world):
    code = issue_code(client, world)
    response = client.post(
        f"/api/v1/invite-codes/{code['id']}/revoke", headers=world.h("operator_b")
    )
    assert response.status_code == 403


def test_after_repeated_failures_even_the_right_code_is_refused_with_429(app, client, world):
    code = issue_code(client, world)
    h = world.h("newcomer")
    for n in range(app.config["BIND_MAX_FAILURES"]):
        assert bind(client, h, f"WRONG{n:03d}").status_code == 404
    locked = bind(client, h, code["code"])
    assert locked.status_code == 429
    body = locked.get_json()
    assert body["reason"] == "bind_locked"
    assert 0 < body["retry_after"] <= app.config["BIND_FAILURE_WINDOW_S"]
    assert "分钟后再试" in body["message"]
    assert client.get("/api/v1/parent/centres", headers=h).get_json() == []
    assert uses_of(code) == 0


def test_binding_works_again_once_the_failures_age_out(app, client, world):
    code = issue_code(client, world)
    h = world.h("newcomer")
    for n in range(app.config["BIND_MAX_FAILURES"]):
        bind(client, h, f"WRONG{n:03d}")
    assert bind(client, h, code["code"]).status_code == 429
    window = dt.timedelta(seconds=app.config["BIND_FAILURE_WINDOW_S"])
    for failure in db.session.scalars(select(BindFailure)):
        failure.failed_at -= window
    db.session.commit()
    assert bind(client, h, code["code"]).status_code == 201


def test_a_successful_bind_does_not_wipe_the_failure_count(app, client, world):
    # Otherwise re-binding a code one already holds would reset the count between guesses.
    code = issue_code(client, world)
    h = world.h("parent")  # already linked to centre A
    for n in range(app.config["BIND_MAX_FAILURES"] - 1):
        bind(client, h, f"WRONG{n:03d}")
    assert bind(client, h, code["code"]).status_code == 200
    assert bind(client, h, "WRONG999").status_code == 404
    assert bind(client, h, code["code"]).status_code == 429


def test_failures_from_one_address_lock_binding_from_there_for_everyone(app, client, world):
    app.config["BIND_MAX_FAILURES_PER_IP"] = 3
    code = issue_code(client, world)
    guessers = [f.parent_of() for _ in range(3)]
    db.session.commit()
    for guesser in guessers:
        response = bind(client, f.login(client, guesser.username), "WRONG000", ip="203.0.113.7")
        assert response.status_code == 404
    from_there = bind(client, world.h("newcomer"), code["code"], ip="203.0.113.7")
    assert from_there.status_code == 429
    elsewhere = bind(client, world.h("newcomer"), code["code"], ip="198.51.100.20")
    assert elsewhere.status_code == 201


def test_failures_through_a_local_proxy_do_not_lock_out_everyone(app, client, world):
    # nginx on this machine: every request arrives from 127.0.0.1.
    app.config["BIND_MAX_FAILURES_PER_IP"] = 2
    guessers = [f.parent_of() for _ in range(3)]
    db.session.commit()
    for guesser in guessers:
        bind(client, f.login(client, guesser.username), "WRONG000", ip="127.0.0.1")
    code = issue_code(client, world)
    assert bind(client, world.h("newcomer"), code["code"], ip="127.0.0.1").status_code == 201


def test_concurrent_binds_never_take_more_than_the_use_limit(client, world):
    code = issue_code(client, world, max_uses=3)
    newcomers = [f.parent_of() for _ in range(8)]
    db.session.commit()
    headers = [f.login(client, p.username) for p in newcomers]

    def attempt(h):
        return lambda: bind(client, h, code["code"])

    responses = _parallel([attempt(h) for h in headers])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 5
    assert {r.get_json()["reason"] for r in responses if r.status_code == 409} == {"used_up"}
    assert uses_of(code) == 3
    links = select(func.count()).where(ParentLink.invite_code_id == code["id"])
    assert db.session.scalar(links) == 3


def test_a_mini_program_parent_binds_with_a_code(app, client, world, wechat_stub):
    app.config["WECHAT_API_BASE"] = wechat_stub.base_url
    code = issue_code(client, world)
    login = client.post(
        "/api/v1/auth/wxa", json={"code": wechat_stub.add_code(openid="o-wxa-parent")}
    )
    assert login.status_code == 200, login.get_json()
    h = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    try:
        assert bind(client, h, code["code"]).status_code == 201
    finally:
        app.extensions.pop("bk_wxa_client")._http.close()
    parent = db.session.scalar(select(User).where(User.wxa_openid == "o-wxa-parent"))
    # Known by the openid alone: no phone, no name beyond the default.
    assert (parent.phone, parent.display_name, parent.username) == (None, "家长", None)
    assert db.session.scalar(select(ParentLink.centre_id).where(ParentLink.parent_id == parent.id))


def test_a_parent_unlinks_and_can_no_longer_open_the_centre(client, world):
    h = world.h("parent")
    url = f"/api/v1/parent/centres/{world['a'].id}"
    assert client.get(url, headers=h).status_code == 200
    assert client.delete(url, headers=h).status_code == 204
    assert client.get(url, headers=h).status_code == 403
    assert client.delete(url, headers=h).status_code == 404


# --- the centre page -----------------------------------------------------------------------


def beijing(hour: int, minute: int = 0, day: int = 30) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=BEIJING)


def test_the_centre_page_shows_only_rooms_shown_to_parents(client, world):
    page = client.get(
        f"/api/v1/parent/centres/{world['a'].id}", headers=world.h("parent")
    ).get_json()
    assert page["centre"]["name"] == "阳光小树苗托管中心"
    assert [r["name"] for r in page["rooms"]] == ["备餐间", "操作间", "清洗间"]
    cooking = next(r for r in page["rooms"] if r["kind"] == "cooking")
    assert [c["id"] for c in cooking["cameras"]] == [world["cooking"].id]
    assert world["storage"].id not in {c["id"] for r in page["rooms"] for c in r["cameras"]}
    assert page["meal_windows"] == [{"label": "午餐", "weekday": None, "text": "11:30–13:00"}]
    assert page["record"]["notices"] == {"open": 0, "overdue": 0, "verified": 0}
    assert "notice_list" not in page["record"]


def test_during_a_meal_window_the_cameras_can_be_watched(world):
    world["cooking"].status = CameraStatus.ONLINE
    db.session.commit()
    page = parents.centre_page(world["parent"], world["a"].id, now=beijing(12, 0))
    assert page["in_meal_window"] is True
    assert page["current_window"]["text"] == "11:30–13:00"
    [camera] = next(r for r in page["rooms"] if r["kind"] == "cooking")["cameras"]
    assert (camera["can_watch"], camera["status_label"]) == (True, "在线")
    tomorrow = dt.datetime(2026, 12, 1, 11, 30, tzinfo=BEIJING)
    assert page["next_window"]["starts_at"] == tomorrow.isoformat()


def test_outside_a_meal_window_the_page_says_when_the_next_one_opens(world):
    morning = parents.centre_page(world["parent"], world["a"].id, now=beijing(10, 0))
    assert morning["in_meal_window"] is False
    assert morning["current_window"] is None
    assert morning["next_window"]["text"] == "11:30–13:00"
    assert morning["next_window"]["starts_at"] == beijing(11, 30).isoformat()
    [camera] = next(r for r in morning["rooms"] if r["kind"] == "cooking")["cameras"]
    assert camera["can_watch"] is False
    assert camera["refusal_reason"] == "outside_meal_window"
    afternoon = parents.centre_page(world["parent"], world["a"].id, now=beijing(14, 0))
    assert (
        afternoon["next_window"]["starts_at"]
        == dt.datetime(2026, 12, 1, 11, 30, tzinfo=BEIJING).isoformat()
    )


def test_the_page_shows_todays_snapshots_of_shown_rooms_only(world):
    def snapshot(camera, at: dt.datetime) -> Snapshot:
        row = Snapshot(
            camera_id=camera.id,
            taken_at=at,
            path=f"snapshots/{camera.id}-{at.timestamp():.0f}.jpg",
            sha256="0" * 64,
            size_bytes=1000,
            reason=SnapshotReason.SCHEDULE,
        )
        db.session.add(row)
        return row

    today = snapshot(world["cooking"], beijing(0, 10))
    snapshot(world["storage"], beijing(0, 20))  # a room parents do not see
    # 23:50 on the 29th in Beijing is the same UTC day as the 30th's morning, but not today here.
    snapshot(world["cooking"], beijing(23, 50, day=29))
    db.session.commit()
    page = parents.centre_page(world["parent"], world["a"].id, now=beijing(0, 30))
    assert [s["id"] for s in page["snapshots_today"]] == [today.id]
    assert page["snapshots_today"][0]["area_name"] == "操作间"


def test_the_centre_page_runs_as_many_queries_however_many_cameras_it_shows(client, world):
    url, headers = f"/api/v1/parent/centres/{world['a'].id}", world.h("parent")
    db.session.commit()  # both requests start from a new transaction
    with count_statements() as with_one:
        assert client.get(url, headers=headers).status_code == 200
    for kind in (AreaKind.PREP, AreaKind.COOKING, AreaKind.WASHING):
        f.camera(world["a"], kind)
    db.session.commit()
    with count_statements() as with_four:
        page = client.get(url, headers=headers).get_json()
    assert sum(len(room["cameras"]) for room in page["rooms"]) == 4
    assert len(with_four) == len(with_one)


def test_my_centres_runs_as_many_queries_however_many_centres_are_followed(client, world):
    headers = world.h("parent")
    db.session.commit()  # both requests start from a new transaction
    with count_statements() as with_one:
        assert len(client.get("/api/v1/parent/centres", headers=headers).get_json()) == 1
    db.session.add(ParentLink(parent_id=world["parent"].id, centre_id=world["b"].id))
    db.session.commit()
    with count_statements() as with_two:
        links = client.get("/api/v1/parent/centres", headers=headers).get_json()
    assert [link["centre_name"] for link in links] == ["阳光小树苗托管中心", "启航午托部"]
    assert len(with_two) == len(with_one)


def test_a_parent_cannot_open_the_page_of_a_centre_they_do_not_follow(client, world):
    response = client.get(f"/api/v1/parent/centres/{world['b'].id}", headers=world.h("parent"))
    assert response.status_code == 403


def test_staff_cannot_use_the_parent_pages(client, world):
    response = client.get(f"/api/v1/parent/centres/{world['a'].id}", headers=world.h("operator"))
    assert response.status_code == 403


def test_the_centre_page_says_the_cameras_can_be_watched_during_the_meal_window(client, world):
    window_around_now(world["a"])
    world["cooking"].status = CameraStatus.ONLINE
    db.session.commit()
    page = client.get(
        f"/api/v1/parent/centres/{world['a'].id}", headers=world.h("parent")
    ).get_json()
    assert page["in_meal_window"] is True
    [camera] = next(r for r in page["rooms"] if r["kind"] == "cooking")["cameras"]
    assert (camera["can_watch"], camera["refusal_reason"], camera["refusal_message"]) == (
        True,
        None,
        None,
    )


def test_the_centre_page_says_why_the_cameras_cannot_be_watched_outside_it(client, world):
    window_away_from_now(world["a"])
    world["cooking"].status = CameraStatus.ONLINE
    db.session.commit()
    page = client.get(
        f"/api/v1/parent/centres/{world['a'].id}", headers=world.h("parent")
    ).get_json()
    assert page["in_meal_window"] is False
    [camera] = next(r for r in page["rooms"] if r["kind"] == "cooking")["cameras"]
    assert camera["can_watch"] is False
    assert camera["refusal_reason"] == "outside_meal_window"
    assert camera["refusal_message"].startswith("当前不在直播开放时段（午餐 ")


# --- snapshots a parent may open -----------------------------------------------------------


def _shooter(camera_id: int, url: str) -> media_snapshot.Snapshot:
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    return media_snapshot.Snapshot(
        jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), taken_at=utcnow(), source="pull"
    )


def _image(client, world: World, who: str, snapshot_id: int):
    response = client.get(f"/api/v1/snapshots/{snapshot_id}/image", headers=world.h(who))
    response.get_data()
    response.close()
    return response


def test_a_parent_opens_todays_snapshot_of_a_room_shown_to_parents(client, world):
    shot = snapshots.take(world["operator"], world["cooking"].id, SnapshotReason.MANUAL, _shooter)
    response = _image(client, world, "parent", shot.id)
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert hashlib.sha256(response.data).hexdigest() == shot.sha256


def test_a_parent_cannot_open_a_snapshot_of_a_room_not_shown_to_parents(client, world):
    shot = snapshots.take(world["operator"], world["storage"].id, SnapshotReason.MANUAL, _shooter)
    response = _image(client, world, "parent", shot.id)
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "forbidden",
        "message": "家长只能查看当天公开区域的抓拍",
        "reason": "not_shown",
    }
    assert _image(client, world, "operator", shot.id).status_code == 200


def test_a_parent_cannot_open_yesterdays_snapshot(client, world):
    shot = snapshots.take(world["operator"], world["cooking"].id, SnapshotReason.MANUAL, _shooter)
    db.session.get(Snapshot, shot.id).taken_at = utcnow() - dt.timedelta(days=1)
    db.session.commit()
    response = _image(client, world, "parent", shot.id)
    assert response.status_code == 403
    assert response.get_json()["reason"] == "not_shown"
    assert _image(client, world, "inspector", shot.id).status_code == 200


def test_a_parent_of_another_centre_cannot_open_the_snapshot(client, world):
    shot = snapshots.take(world["operator"], world["cooking"].id, SnapshotReason.MANUAL, _shooter)
    response = _image(client, world, "parent_b", shot.id)
    assert response.status_code == 403
    assert response.get_json()["reason"] == "scope"


# --- the parent's phone --------------------------------------------------------------------

ME = "/api/v1/parent/me"


def test_a_parent_gives_changes_and_clears_their_phone(client, world):
    h = world.h("newcomer")
    assert client.get(ME, headers=h).get_json() == {
        "id": world["newcomer"].id,
        "display_name": "赵家长",
        "phone": None,
    }
    given = client.patch(ME, json={"phone": "+86 139-0898-0001"}, headers=h)
    assert given.status_code == 200, given.get_json()
    assert given.get_json()["phone"] == "13908980001"
    assert client.get(ME, headers=h).get_json()["phone"] == "13908980001"
    assert client.patch(ME, json={"phone": "13700000002"}, headers=h).get_json()["phone"] == (
        "13700000002"
    )
    assert client.patch(ME, json={"phone": ""}, headers=h).get_json()["phone"] is None
    assert client.patch(ME, json={"phone": "13700000002"}, headers=h).status_code == 200
    assert client.patch(ME, json={"phone": None}, headers=h).get_json()["phone"] is None
    db.session.expire_all()
    assert db.session.get(User, world["newcomer"].id).phone is None


@pytest.mark.parametrize(
    "typed",
    [
        "12800138000",  # no mobile prefix 12
        "1380013800",  # ten digits
        "138001380001",  # twelve
        "+1 650 555 0100",
        "１３８００１３８０００",  # full-width digits
        "1380013800a",
    ],
)
def test_a_number_that_is_not_a_mainland_mobile_is_refused(client, world, typed):
    response = client.patch(ME, json={"phone": typed}, headers=world.h("parent"))
    assert response.status_code == 422
    body = response.get_json()
    assert (body["field"], body["message"]) == ("phone", "请输入正确的手机号码（11 位，以 1 开头）")
    db.session.expire_all()
    assert db.session.get(User, world["parent"].id).phone == "13800000001"


def test_the_phone_is_the_only_thing_a_parent_may_change_here(client, world):
    response = client.patch(
        ME, json={"phone": "13800000009", "display_name": "管理员"}, headers=world.h("parent")
    )
    assert response.status_code == 422
    assert "display_name" in response.get_json()["fields"]
