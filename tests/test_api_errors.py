"""Bad input gets a clear JSON error with the right status, never a 500."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests import factories as f


@pytest.fixture
def operator_headers(client, app):
    centre = f.centre(f.district())
    operator = f.operator_of(centre)
    db.session.commit()
    return centre, f.login(client, operator.username)


def test_malformed_json_is_a_400_with_a_message(client):
    response = client.post(
        "/api/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert response.get_json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        "text",
        {"username": 5, "password": "x"},
        {"username": "a"},
        {"username": "a", "password": "b", "role": "admin"},
        {"username": "a" * 65, "password": "b"},
    ],
)
def test_wrong_shapes_and_types_are_422_with_field_messages(client, body):
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    payload = response.get_json()
    assert payload["error"] == "unprocessable"
    assert payload["message"] == "内容未通过校验"
    assert payload["fields"]


def test_an_oversized_body_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post(
        "/api/v1/auth/login",
        data=b'{"username": "' + b"x" * 4096 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "payload_too_large", "message": "提交的内容过大"}


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_a_wrong_method_is_a_json_405(client):
    response = client.get("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "window",
    [
        {"label": "午餐", "starts_at": "25:00", "ends_at": "26:00"},
        {"label": "午餐", "starts_at": "13:00", "ends_at": "12:00"},
        {"label": "", "starts_at": "11:00", "ends_at": "12:00"},
        {"label": "午餐", "starts_at": "11:00", "ends_at": "12:00", "weekday": 7},
        {"label": "午餐", "starts_at": "11:00"},
    ],
)
def test_invalid_meal_windows_are_422_and_nothing_is_written(client, operator_headers, window):
    centre, headers = operator_headers
    response = client.put(
        f"/api/v1/operator/centres/{centre.id}/meal-windows",
        json={"windows": [window]},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "unprocessable"
    db.session.expire_all()
    assert [(w.label, w.starts_at.hour) for w in centre.meal_windows] == [("午餐", 11)]


def test_sql_like_strings_are_just_text(client, app):
    response = client.post(
        "/api/v1/auth/login", json={"username": "' OR 1=1 --", "password": "x' OR '1'='1"}
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthenticated"


def test_an_unexpected_error_is_a_json_500_without_details(client, app, caplog):
    @app.get("/api/v1/_boom")
    def boom():
        raise RuntimeError("rtsp://admin:secret@10.0.0.1/stream broke")

    response = client.get("/api/v1/_boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "服务器内部错误，请稍后再试",
    }
    logged = caplog.text  # message and traceback, as a log handler prints them
    assert "broke" in logged
    assert "secret" not in logged
    assert "rtsp://***@10.0.0.1/stream" in logged


def test_when_every_database_connection_is_busy_the_answer_is_a_quick_503(app, app_config):
    """A request that cannot get a connection in DB_POOL_TIMEOUT_S is told to retry: it does
    not hang for half a minute and it is not a 500."""
    import dataclasses

    from app import create_app

    tight = create_app(
        dataclasses.replace(app_config, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT_S=0.2)
    )
    with tight.app_context():
        held = db.engine.connect()  # the one connection, busy elsewhere
        try:
            response = tight.test_client().post(
                "/api/v1/auth/login", json={"username": "someone", "password": "x"}
            )
        finally:
            held.close()
        assert response.status_code == 503
        assert response.get_json() == {"error": "busy", "message": "服务繁忙，请稍后重试"}
        assert response.headers["Retry-After"] == "5"
        db.session.remove()
        db.engine.dispose()
