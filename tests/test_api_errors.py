"""Bad input gets a clear JSON error with the right status, never a 500, and the OpenAPI
document lists the errors each operation answers with, in the shape they have."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app.api.schemas import MAX_ID
from app.extensions import db
from app.models import Role
from tests import factories as f

METHODS = ("get", "post", "put", "patch", "delete")


def openapi(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


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


# --- what the OpenAPI document says about errors --------------------------------------------


def test_the_documented_error_body_is_the_one_errors_have(client, operator_headers):
    """Every error response used to be documented with flask-smorest's own body
    ({code, status, message, errors}), which no answer of this app has."""
    spec = openapi(client)
    error = spec["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["error", "message"]
    schemas = {
        response["content"]["application/json"]["schema"]["$ref"]
        for response in spec["components"]["responses"].values()
        if "content" in response
    }
    assert schemas == {"#/components/schemas/Error"}
    centre, headers = operator_headers
    answers = [
        client.get("/api/v1/auth/me"),  # 401 with a reason
        client.post("/api/v1/auth/login", json={"username": "a"}),  # 422 with field messages
        client.post(f"/api/v1/centres/{centre.id}/installation", headers=headers),  # 409
        client.get("/api/v1/notices/999", headers=headers),  # 404
    ]
    assert [a.status_code for a in answers] == [401, 422, 409, 404]
    for answer in answers:
        body = answer.get_json()
        assert set(error["required"]) <= set(body) <= set(error["properties"]), body


def test_json_bodies_document_400_and_paths_with_ids_document_404(client):
    """Malformed JSON is a 400 and an id that names nothing a 404 on every such operation;
    neither used to be documented (only under the catch-all `default`)."""
    checked = 0
    spec = openapi(client)
    for method, path, operation in operations(spec):
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert "400" in operation["responses"], f"{method} {path}"
        if "{" in path:
            assert "404" in operation["responses"], f"{method} {path}"
            for parameter in spec["paths"][path]["parameters"]:
                assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            checked += 1
    assert checked > 40


@pytest.fixture
def admin_headers(client) -> dict[str, str]:
    admin = f.user(Role.ADMIN)
    db.session.commit()
    return f.login(client, admin.username)


@pytest.mark.parametrize("number", [0, MAX_ID + 1, 2**63, 10**30])
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/centres/{}"),
        ("POST", "/api/v1/centres/{}/suspension"),
        ("DELETE", "/api/v1/centres/{}/suspension"),
        ("GET", "/api/v1/inspector/patrols/{}/record.pdf"),
    ],
)
def test_a_path_id_no_row_can_have_is_a_404(client, admin_headers, method, path, number):
    """An id beyond what the database's INTEGER columns hold used to reach the database: a 500
    on SQLite (beyond 64 bits)."""
    response = client.open(path.format(number), method=method, json={}, headers=admin_headers)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("number", [0, MAX_ID + 1, 2**63, 10**30])
def test_a_body_or_query_id_no_row_can_have_is_a_422(client, number):
    inspector = f.inspector_of(f.agency(f.district()))
    db.session.commit()
    headers = f.login(client, inspector.username)
    started = client.post(
        "/api/v1/inspector/patrols", json={"centre_id": number, "mode": "remote"}, headers=headers
    )
    assert started.status_code == 422
    assert list(started.get_json()["fields"]) == ["centre_id"]
    listed = client.get(f"/api/v1/notices?centre_id={number}", headers=headers)
    assert listed.status_code == 422
    assert list(listed.get_json()["fields"]) == ["centre_id"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/notices"),
        ("GET", "/api/v1/concerns"),
        ("POST", "/api/v1/inspector/patrols"),
        ("POST", "/api/v1/inspector/notices"),
        ("POST", "/api/v1/parent/concerns"),
    ],
)
def test_operations_naming_a_centre_in_the_body_or_query_document_404(client, method, path):
    assert "404" in openapi(client)["paths"][path][method.lower()]["responses"]


def test_an_unknown_centre_in_a_query_is_the_documented_404(client):
    inspector = f.inspector_of(f.agency(f.district()))
    db.session.commit()
    headers = f.login(client, inspector.username)
    for path in ("/api/v1/notices", "/api/v1/concerns"):
        response = client.get(f"{path}?centre_id=999999", headers=headers)
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not_found"


def test_meal_window_times_are_documented_as_the_hh_mm_they_are_read_as(client, operator_headers):
    """The document said only "a string"; the API reads 24-hour HH:MM and refuses the rest."""
    window = openapi(client)["components"]["schemas"]["MealWindow"]["properties"]["starts_at"]
    pattern = re.compile(window["pattern"])
    assert pattern.search("11:30") and pattern.search("00:00") and pattern.search("23:59")
    assert not any(pattern.search(t) for t in ("24:00", "11:30:00", "1130", "11:3"))
    centre, headers = operator_headers
    url = f"/api/v1/operator/centres/{centre.id}/meal-windows"
    accepted = {"label": "午餐", "starts_at": "11:30", "ends_at": "13:00"}
    assert client.put(url, json={"windows": [accepted]}, headers=headers).status_code == 200
    refused = {**accepted, "starts_at": "11:30:00"}
    assert client.put(url, json={"windows": [refused]}, headers=headers).status_code == 422


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/v1/cameras/{camera_id}/snapshots"),
        ("POST", "/api/v1/inspector/concerns/{concern_id}/accept"),
        ("POST", "/api/v1/inspector/patrols/{patrol_id}/end"),
        ("POST", "/api/v1/centres/{centre_id}/invite-codes"),
    ],
)
def test_a_body_of_optional_fields_is_documented_as_optional(client, method, path):
    """These bodies were documented as required, but every field has a default and the API
    answers a request without one."""
    operation = openapi(client)["paths"][path][method.lower()]
    assert operation["requestBody"]["required"] is False


def test_an_invite_code_is_issued_without_a_body(client, operator_headers):
    centre, headers = operator_headers
    response = client.post(f"/api/v1/centres/{centre.id}/invite-codes", headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["max_uses"] == 50


@pytest.mark.parametrize(
    "body",
    [
        {"username": "admin\x00", "password": "x"},
        {"username": "admin", "password": "x\x00"},
    ],
)
def test_a_nul_character_in_text_is_a_422(client, body):
    """PostgreSQL text cannot hold NUL (U+0000): a username with one used to be a 500 there."""
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    field = next(k for k, v in body.items() if "\x00" in v)
    assert response.get_json()["fields"] == {field: ["不能包含空字符（U+0000）"]}


def test_every_text_field_is_documented_without_nul(client):
    spec = openapi(client)
    text_fields = [
        (name, prop)
        for schema_name, schema in spec["components"]["schemas"].items()
        if schema_name.endswith("In") or schema_name == "MealWindow"
        for name, prop in schema.get("properties", {}).items()
        if prop.get("type") == "string" and "format" not in prop and "enum" not in prop
    ]
    assert len(text_fields) > 20
    for name, prop in text_fields:
        # Whatever the pattern, text holding NUL does not match it.
        assert prop.get("pattern"), name
        assert re.search(prop["pattern"], "ab\x00") is None, name
