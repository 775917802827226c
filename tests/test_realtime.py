"""Open apps hear about changes in their scope, and only those."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db, socketio
from app.models import AgencyKind, AreaKind, CameraStatus, SnapshotReason
from app.realtime import NAMESPACE
from app.services import cameras, notices, snapshots
from app.services.auth import issue_access_token
from app.services.base import publish, transaction
from media import snapshot as media_snapshot
from tests import factories as f
from tests.test_notices import (  # noqa: F401 - fixture reuse
    _backdate_deadline,
    issued_notice,
    loop,
    patrol_with_finding,
)


def _connect(app, client, username):
    token = client.post(
        "/api/v1/auth/login", json={"username": username, "password": f.PASSWORD}
    ).get_json()["access_token"]
    return socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})


def _listen(app, user):
    """A socket of the user's open app (token issued directly: no password check per user)."""
    token = issue_access_token(user)
    listener = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    assert listener.is_connected(NAMESPACE)
    return listener


def _heard(listener, name: str) -> list[dict]:
    """The events of that name the listener received since it was last asked."""
    return [m["args"][0] for m in listener.get_received(NAMESPACE) if m["name"] == name]


def _shooter(camera_id: int, url: str) -> media_snapshot.Snapshot:
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    return media_snapshot.Snapshot(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        taken_at=datetime.now(UTC),
        source="pull",
    )


def _goes_offline(camera) -> None:
    """What the media runner reports when a camera drops."""
    assert cameras.record_status(
        camera.id, CameraStatus.OFFLINE, last_frame_at=None, reconnects_last_hour=1
    )


# --- connecting ----------------------------------------------------------------------------


def test_a_connection_without_a_valid_token_is_refused(app):
    assert not socketio.test_client(app, namespace=NAMESPACE).is_connected(NAMESPACE)
    bad = socketio.test_client(app, namespace=NAMESPACE, auth={"token": "not-a-jwt"})
    assert not bad.is_connected(NAMESPACE)


def test_a_connection_with_an_expired_access_token_is_refused(app):
    operator = f.operator_of(f.centre(f.district()))
    db.session.commit()
    app.config["ACCESS_TOKEN_TTL_S"] = -60
    expired = issue_access_token(operator)
    app.config["ACCESS_TOKEN_TTL_S"] = 900
    fresh = issue_access_token(operator)
    refused = socketio.test_client(app, namespace=NAMESPACE, auth={"token": expired})
    assert not refused.is_connected(NAMESPACE)
    assert socketio.test_client(app, namespace=NAMESPACE, auth={"token": fresh}).is_connected(
        NAMESPACE
    )


# --- who hears camera status and snapshots -------------------------------------------------


@pytest.fixture
def city(app, client):
    """Haikou city above Meilan and Longhua districts. Meilan's centre A is regulated by the
    Meilan market and education bureaus and the city bureau; centre B is Meilan's too; centre C
    is Longhua's. A's cooking room is shown to parents, its storage room is not."""
    haikou = f.district("海口市")
    meilan = f.district("美兰区", parent=haikou)
    longhua = f.district("龙华区", parent=haikou)
    city_market = f.agency(haikou, prefix="海口市监整")
    meilan_market = f.agency(meilan)
    meilan_education = f.agency(meilan, AgencyKind.EDUCATION, prefix="美兰教整")
    longhua_market = f.agency(longhua, prefix="龙华市监整")
    a = f.centre(meilan, "阳光小树苗托管中心")
    b = f.centre(meilan, "启航午托部")
    c = f.centre(longhua, "明德课后托管")
    people = {
        "parent_a": f.parent_of(a),
        "other_parent_a": f.parent_of(a),
        "parent_b": f.parent_of(b),
        "newcomer": f.parent_of(),
        "operator_a": f.operator_of(a),
        "operator_b": f.operator_of(b),
        "inspector_meilan": f.inspector_of(meilan_market),
        "inspector_education": f.inspector_of(meilan_education),
        "inspector_city": f.inspector_of(city_market),
        "inspector_longhua": f.inspector_of(longhua_market),
    }
    places = {
        "a": a,
        "b": b,
        "a_cooking": f.camera(a, AreaKind.COOKING),
        "a_storage": f.camera(a, AreaKind.STORAGE),
        "b_cooking": f.camera(b, AreaKind.COOKING),
        "c_cooking": f.camera(c, AreaKind.COOKING),
    }
    db.session.commit()
    listeners = {who: _listen(app, user) for who, user in people.items()}
    return {**places, "people": people, "listen": listeners}


def _who_heard(city, name: str) -> set[str]:
    return {who for who, listener in city["listen"].items() if _heard(listener, name)}


def test_a_camera_going_offline_reaches_its_centre_its_regulators_and_its_parents(city):
    _goes_offline(city["a_cooking"])
    assert _who_heard(city, "camera.status") == {
        "parent_a",
        "other_parent_a",
        "operator_a",
        "inspector_meilan",
        "inspector_education",
        "inspector_city",
    }


def test_the_status_of_a_room_not_shown_to_parents_reaches_staff_only(city):
    _goes_offline(city["a_storage"])
    assert _who_heard(city, "camera.status") == {
        "operator_a",
        "inspector_meilan",
        "inspector_education",
        "inspector_city",
    }


def test_a_camera_outside_the_jurisdiction_is_not_heard_by_its_inspectors(city):
    _goes_offline(city["c_cooking"])
    assert _who_heard(city, "camera.status") == {"inspector_longhua", "inspector_city"}


def test_a_snapshot_reaches_the_regulators_and_the_parents_of_a_shown_room(city):
    operator = city["people"]["operator_a"]
    shown = snapshots.take(operator, city["a_cooking"].id, SnapshotReason.MANUAL, _shooter)
    heard = _heard(city["listen"]["inspector_meilan"], "snapshot.created")
    assert [e["snapshot_id"] for e in heard] == [shown.id]
    assert _who_heard(city, "snapshot.created") == {
        "parent_a",
        "other_parent_a",
        "operator_a",
        "inspector_education",
        "inspector_city",
    }
    snapshots.take(operator, city["a_storage"].id, SnapshotReason.MANUAL, _shooter)
    assert _who_heard(city, "snapshot.created") == {
        "operator_a",
        "inspector_meilan",
        "inspector_education",
        "inspector_city",
    }


def test_a_parent_of_centre_a_never_hears_centre_b(city):
    _goes_offline(city["b_cooking"])
    snapshots.take(
        city["people"]["operator_b"], city["b_cooking"].id, SnapshotReason.MANUAL, _shooter
    )
    parent_b = [m["name"] for m in city["listen"]["parent_b"].get_received(NAMESPACE)]
    assert parent_b == ["camera.status", "snapshot.created"]
    assert city["listen"]["parent_a"].get_received(NAMESPACE) == []
    assert city["listen"]["operator_a"].get_received(NAMESPACE) == []


# --- scope changes while a socket is open --------------------------------------------------


def test_after_unlinking_the_parents_open_socket_no_longer_hears_the_centre(client, city):
    parent = city["people"]["parent_a"]
    response = client.delete(
        f"/api/v1/parent/centres/{city['a'].id}", headers=f.login(client, parent.username)
    )
    assert response.status_code == 204
    listener = city["listen"]["parent_a"]
    [unlinked] = _heard(listener, "parent.unlinked")
    assert unlinked["linked_centre_id"] == city["a"].id
    _goes_offline(city["a_cooking"])
    assert _heard(city["listen"]["other_parent_a"], "camera.status")  # still sent
    assert listener.is_connected(NAMESPACE)
    assert listener.get_received(NAMESPACE) == []


def test_after_binding_the_parents_open_socket_hears_the_centre(client, city):
    operator_h = f.login(client, city["people"]["operator_a"].username)
    code = client.post(f"/api/v1/centres/{city['a'].id}/invite-codes", json={}, headers=operator_h)
    newcomer_h = f.login(client, city["people"]["newcomer"].username)
    bound = client.post(
        "/api/v1/parent/bind", json={"code": code.get_json()["code"]}, headers=newcomer_h
    )
    assert bound.status_code == 201
    _goes_offline(city["a_cooking"])
    assert [e["camera_id"] for e in _heard(city["listen"]["newcomer"], "camera.status")] == [
        city["a_cooking"].id
    ]


def test_a_deactivated_users_open_sockets_are_disconnected(city):
    operator = city["people"]["operator_a"]
    listener = city["listen"]["operator_a"]
    with transaction():
        db.session.get(type(operator), operator.id).is_active = False
        publish("user.deactivated", user_id=operator.id)
    assert not listener.is_connected(NAMESPACE)
    assert city["listen"]["operator_b"].is_connected(NAMESPACE)


def test_room_orders_never_reach_a_client(client, city):
    client.delete(
        f"/api/v1/parent/centres/{city['a'].id}",
        headers=f.login(client, city["people"]["parent_a"].username),
    )
    names = [m["name"] for m in city["listen"]["parent_a"].get_received(NAMESPACE)]
    assert names == ["parent.unlinked"]


# --- after commit only ---------------------------------------------------------------------


def test_a_write_that_rolls_back_emits_nothing(city):
    def the_commit_fails(session: Session) -> None:
        # Only the write's own commit, once it has published (not the read ended before it).
        if session.info.get("pending_events"):
            raise RuntimeError("database went away")

    event.listen(Session, "before_commit", the_commit_fails)
    try:
        with pytest.raises(RuntimeError):
            _goes_offline(city["a_cooking"])
    finally:
        event.remove(Session, "before_commit", the_commit_fails)
    db.session.expire_all()
    assert db.session.get(type(city["a_cooking"]), city["a_cooking"].id).status is not (
        CameraStatus.OFFLINE
    )
    assert _who_heard(city, "camera.status") == set()
    _goes_offline(city["a_cooking"])  # the same change, committed, is heard
    assert "inspector_meilan" in _who_heard(city, "camera.status")


# --- notices and patrols -------------------------------------------------------------------


def test_the_operator_hears_a_notice_issued_to_their_centre_and_no_other(app, client, loop):  # noqa: F811
    mine = _connect(app, client, loop["operator"].username)
    stranger_operator = f.operator_of(loop["other_centre"])
    parent = f.parent_of(loop["centre"])
    db.session.commit()
    stranger = _connect(app, client, stranger_operator.username)
    parent_client = _connect(app, client, parent.username)
    inspector = _connect(app, client, loop["inspector"].username)
    notice = issued_notice(client, loop)
    received = [m for m in mine.get_received(NAMESPACE) if m["name"] == "notice.issued"]
    assert [m["args"][0]["number"] for m in received] == [notice["number"]]
    heard_by_inspector = [m["name"] for m in inspector.get_received(NAMESPACE)]
    assert "notice.issued" in heard_by_inspector
    assert stranger.get_received(NAMESPACE) == []
    assert [m["name"] for m in parent_client.get_received(NAMESPACE)] == []


def test_overdue_and_escalated_notices_reach_the_centre_and_the_agency(app, client, loop):  # noqa: F811
    app.config["ESCALATION_GRACE_DAYS"] = 3
    stranger_operator = f.operator_of(loop["other_centre"])
    parent = f.parent_of(loop["centre"])
    db.session.commit()
    notice = issued_notice(client, loop)
    listeners = {
        "operator": _connect(app, client, loop["operator"].username),
        "inspector": _connect(app, client, loop["inspector"].username),
        "stranger": _connect(app, client, stranger_operator.username),
        "parent": _connect(app, client, parent.username),
    }
    _backdate_deadline(notice["id"], 5)
    assert notices.mark_overdue() == [notice["id"]]
    assert notices.escalate_overdue() == [notice["id"]]
    for who in ("operator", "inspector"):
        names = [
            (m["name"], m["args"][0]["status_label"])
            for m in listeners[who].get_received(NAMESPACE)
        ]
        assert names == [("notice.overdue", "已逾期"), ("notice.escalated", "逾期已上报")], who
    assert listeners["stranger"].get_received(NAMESPACE) == []
    assert listeners["parent"].get_received(NAMESPACE) == []


def test_a_patrol_is_heard_by_its_agency_and_not_by_parents_or_other_agencies(app, client, loop):  # noqa: F811
    other_agency = f.agency(f.district("龙华区"), prefix="龙华市监整")
    outsider = f.inspector_of(other_agency)
    colleague = f.inspector_of(loop["agency"])
    parent = f.parent_of(loop["centre"])
    db.session.commit()
    listeners = {
        "colleague": _connect(app, client, colleague.username),
        "outsider": _connect(app, client, outsider.username),
        "parent": _connect(app, client, parent.username),
    }
    finding_id = patrol_with_finding(client, loop)
    heard = [m for m in listeners["colleague"].get_received(NAMESPACE)]
    assert [m["name"] for m in heard] == [
        "patrol.started",
        "patrol.finding_recorded",
        "patrol.ended",
    ]
    assert heard[1]["args"][0]["finding_id"] == finding_id
    assert listeners["outsider"].get_received(NAMESPACE) == []
    assert listeners["parent"].get_received(NAMESPACE) == []
