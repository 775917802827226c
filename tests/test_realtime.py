"""Open apps hear about changes in their scope, and only those."""

from __future__ import annotations

from app.extensions import db, socketio
from app.realtime import NAMESPACE
from tests import factories as f
from tests.test_notices import issued_notice, loop  # noqa: F401 - fixture reuse


def _connect(app, client, username):
    token = client.post(
        "/api/v1/auth/login", json={"username": username, "password": f.PASSWORD}
    ).get_json()["access_token"]
    return socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})


def test_a_connection_without_a_valid_token_is_refused(app):
    assert not socketio.test_client(app, namespace=NAMESPACE).is_connected(NAMESPACE)
    bad = socketio.test_client(app, namespace=NAMESPACE, auth={"token": "not-a-jwt"})
    assert not bad.is_connected(NAMESPACE)


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
