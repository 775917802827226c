"""Signing in, through the HTTP API as a client sees it: staff passwords and lockout, rotating
refresh tokens, access-token checks, and mini-program login against a local WeChat stub."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import AuditLog, RefreshToken, Role, User, utcnow
from tests import factories as f
from tests.stubs.wechat import WeChatStub
from tests.stubs.wechat import wechat_stub as _wechat_stub_fixture

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
WXA = "/api/v1/auth/wxa"
ME = "/api/v1/auth/me"

wechat_stub = _wechat_stub_fixture  # a running WeChat API stub (see tests/stubs/wechat.py)


@pytest.fixture
def app_config(app_config, wechat_stub: WeChatStub):
    """The test config with the WeChat API pointed at the stub (same mini-program app)."""
    return dataclasses.replace(
        app_config,
        WECHAT_API_BASE=wechat_stub.base_url,
        WXA_APP_ID=wechat_stub.appid,
        WXA_APP_SECRET=wechat_stub.secret,
        WECHAT_HTTP_TIMEOUT_S=2.0,
    )


@pytest.fixture(autouse=True)
def _close_wechat_client(app):
    """The app keeps its wechatpy client (and its HTTP session) for the process: close it."""
    yield
    client = app.extensions.pop("bk_wxa_client", None)
    if client is not None:
        client._http.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff(**fields) -> User:
    user = f.user(Role.ADMIN, **fields)
    db.session.commit()
    return user


def login(client, username: str, password: str = f.PASSWORD):
    return client.post(LOGIN, json={"username": username, "password": password})


def tokens_for(client, user: User) -> dict:
    response = login(client, user.username)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(client, token: str):
    return client.post(REFRESH, json={"refresh_token": token})


def assert_unauthenticated(response, reason: str | None = None) -> dict:
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["error"] == "unauthenticated"
    assert body["message"]
    if reason is not None:
        assert body["reason"] == reason
    return body


def claims_for(app, user: User, **overrides) -> dict:
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role.value,
        "iss": app.config["JWT_ISSUER"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "jti": "test",
        "typ": "access",
    }
    claims.update(overrides)
    return claims


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- staff login --------------------------------------------------------------------------------


def test_staff_login_returns_tokens_that_open_me(client):
    user = staff()
    response = login(client, user.username)
    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["user"]["id"] == user.id
    assert "password" not in response.get_data(as_text=True)
    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id
    assert me.get_json()["role"] == "admin"


def test_wrong_password_is_401_bad_credentials(client):
    user = staff()
    assert_unauthenticated(login(client, user.username, "wrong-password"), "bad_credentials")


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client):
    user = staff()
    wrong_password = assert_unauthenticated(login(client, user.username, "wrong-password"))
    unknown_user = assert_unauthenticated(login(client, "nobody-by-this-name", "wrong-password"))
    assert unknown_user == wrong_password


def test_unknown_user_takes_as_long_as_a_wrong_password(client):
    """No user enumeration by timing: an unknown name costs a password hash too."""
    user = staff()

    def fastest(username: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            assert login(client, username, "wrong-password").status_code == 401
            times.append(time.perf_counter() - started)
        return min(times)

    known, unknown = fastest(user.username), fastest("nobody-by-this-name")
    assert unknown > known * 0.3, (known, unknown)


def test_account_locks_after_max_failures_even_for_the_right_password(app, client):
    user = staff()
    max_failures = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(max_failures):
        assert_unauthenticated(login(client, user.username, "wrong-password"))
    response = login(client, user.username)
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "rate_limited"
    assert body["message"]
    assert 0 < body["retry_after"] <= app.config["LOGIN_LOCKOUT_S"]


def test_failed_logins_are_persisted_not_rolled_back(app, client):
    user = staff()
    user_id, username = user.id, user.username
    max_failures = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(max_failures - 1):
        assert_unauthenticated(login(client, username, "wrong-password"))
    # Read through a connection of its own: what is committed, not what the session holds.
    with db.engine.connect() as conn:
        failed = conn.scalar(select(User.failed_logins).where(User.id == user_id))
        audited = conn.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "login.failed", AuditLog.actor_id == user_id)
        )
    assert failed == max_failures - 1
    assert audited == max_failures - 1
    assert_unauthenticated(login(client, username, "wrong-password"))
    with db.engine.connect() as conn:
        locked_until = conn.scalar(select(User.locked_until).where(User.id == user_id))
    assert locked_until is not None


def test_a_successful_login_resets_the_failure_count(app, client):
    user = staff()
    max_failures = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(max_failures - 1):
        assert_unauthenticated(login(client, user.username, "wrong-password"))
    assert login(client, user.username).status_code == 200
    assert_unauthenticated(login(client, user.username, "wrong-password"))
    assert login(client, user.username).status_code == 200


def test_deactivated_user_cannot_log_in_and_is_not_told_why(client):
    user = staff(is_active=False)
    deactivated = assert_unauthenticated(login(client, user.username), "bad_credentials")
    unknown = assert_unauthenticated(login(client, "nobody-by-this-name", f.PASSWORD))
    assert deactivated == unknown


def test_deactivating_a_user_ends_their_access_token(client):
    user = staff()
    tokens = tokens_for(client, user)
    user.is_active = False
    db.session.commit()
    assert_unauthenticated(client.get(ME, headers=bearer(tokens["access_token"])), "user_inactive")
    assert_unauthenticated(refresh(client, tokens["refresh_token"]), "user_inactive")


# -- parents with a password --------------------------------------------------------------------


def test_parent_password_login_is_refused_outside_demo_mode(app, client):
    app.config["DEMO_MODE"] = False
    parent = f.parent_of()
    db.session.commit()
    response = login(client, parent.username)
    assert response.status_code == 403
    body = response.get_json()
    assert body["error"] == "forbidden"
    assert body["message"]
    assert body["reason"] == "parent_password_login"
    assert "access_token" not in body


def test_parent_password_login_works_in_demo_mode(app, client):
    assert app.config["DEMO_MODE"] is True
    parent = f.parent_of()
    db.session.commit()
    response = login(client, parent.username)
    assert response.status_code == 200
    assert response.get_json()["user"]["role"] == "parent"


# -- refresh tokens -----------------------------------------------------------------------------


def test_refresh_returns_a_new_pair(client):
    user = staff()
    first = tokens_for(client, user)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert client.get(ME, headers=bearer(second["access_token"])).get_json()["id"] == user.id


def test_a_used_refresh_token_no_longer_works(client):
    first = tokens_for(client, staff())
    assert refresh(client, first["refresh_token"]).status_code == 200
    assert_unauthenticated(refresh(client, first["refresh_token"]))


def test_reusing_a_refresh_token_revokes_the_whole_family(client):
    first = tokens_for(client, staff())
    second = refresh(client, first["refresh_token"]).get_json()
    # Somebody replays the stolen first token: the legitimate newer one dies with it.
    assert_unauthenticated(refresh(client, first["refresh_token"]), "token_revoked")
    assert_unauthenticated(refresh(client, second["refresh_token"]), "token_revoked")


def test_reuse_does_not_touch_other_sessions_of_the_same_user(client):
    user = staff()
    phone, laptop = tokens_for(client, user), tokens_for(client, user)
    assert refresh(client, phone["refresh_token"]).status_code == 200
    assert_unauthenticated(refresh(client, phone["refresh_token"]))
    assert refresh(client, laptop["refresh_token"]).status_code == 200


def test_an_expired_refresh_token_is_refused(client):
    tokens = tokens_for(client, staff())
    db.session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_unauthenticated(refresh(client, tokens["refresh_token"]), "token_expired")


def test_an_unknown_refresh_token_is_refused(client):
    assert_unauthenticated(refresh(client, "not-a-token-we-issued"), "token_invalid")


def test_logout_revokes_the_refresh_token(client):
    tokens = tokens_for(client, staff())
    response = client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert_unauthenticated(refresh(client, tokens["refresh_token"]))


def test_refresh_tokens_are_stored_hashed(client):
    tokens = tokens_for(client, staff())
    rotated = refresh(client, tokens["refresh_token"]).get_json()
    with db.engine.connect() as conn:
        rows = conn.execute(select(RefreshToken.__table__)).all()
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    for plaintext in (tokens["refresh_token"], rotated["refresh_token"]):
        assert plaintext not in stored


# -- access tokens ------------------------------------------------------------------------------


def test_an_expired_access_token_is_401_token_expired(app, client):
    user = staff()
    past = utcnow() - timedelta(hours=1)
    token = jwt.encode(
        claims_for(app, user, iat=past, nbf=past, exp=past + timedelta(minutes=15)),
        app.config["SECRET_KEY"],
        algorithm="HS256",
    )
    assert_unauthenticated(client.get(ME, headers=bearer(token)), "token_expired")


def test_a_crafted_token_with_the_right_key_is_accepted(app, client):
    """The control for the refusals below: the crafting itself is right."""
    user = staff()
    token = jwt.encode(claims_for(app, user), app.config["SECRET_KEY"], algorithm="HS256")
    assert client.get(ME, headers=bearer(token)).status_code == 200


def test_a_tampered_access_token_is_refused(app, client):
    user, other = staff(), staff()
    token = tokens_for(client, user)["access_token"]
    header, _, signature = token.split(".")
    # Same signature, payload changed to claim another user.
    forged = ".".join([header, _b64(claims_for(app, other, iat=0, nbf=0, exp=2**31)), signature])
    assert_unauthenticated(client.get(ME, headers=bearer(forged)), "token_invalid")
    # Same payload, one signature character changed (not the last: its low bits are padding).
    changed = "A" if signature[10] != "A" else "B"
    bad_sig = token.rsplit(".", 1)[0] + "." + signature[:10] + changed + signature[11:]
    assert_unauthenticated(client.get(ME, headers=bearer(bad_sig)), "token_invalid")


def test_an_alg_none_token_is_refused(app, client):
    user = staff()
    claims = claims_for(app, user)
    claims = {k: int(v.timestamp()) if hasattr(v, "timestamp") else v for k, v in claims.items()}
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    assert_unauthenticated(client.get(ME, headers=bearer(unsigned)), "token_invalid")


def test_a_token_signed_with_another_key_is_refused(app, client):
    user = staff()
    token = jwt.encode(claims_for(app, user), "another-key-" + "x" * 40, algorithm="HS256")
    assert_unauthenticated(client.get(ME, headers=bearer(token)), "token_invalid")


def test_a_token_with_another_hmac_algorithm_is_refused(app, client):
    user = staff()
    token = jwt.encode(claims_for(app, user), app.config["SECRET_KEY"], algorithm="HS512")
    assert_unauthenticated(client.get(ME, headers=bearer(token)), "token_invalid")


def test_a_signed_token_that_is_not_an_access_token_is_refused(app, client):
    user = staff()
    token = jwt.encode(
        claims_for(app, user, typ="refresh"), app.config["SECRET_KEY"], algorithm="HS256"
    )
    assert_unauthenticated(client.get(ME, headers=bearer(token)), "token_invalid")


def test_a_refresh_token_is_not_a_bearer_token(client):
    tokens = tokens_for(client, staff())
    assert_unauthenticated(client.get(ME, headers=bearer(tokens["refresh_token"])), "token_invalid")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"],
    ids=["missing", "empty", "no-token", "blank-token", "basic", "other-scheme"],
)
def test_a_missing_or_malformed_authorization_header_is_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    assert_unauthenticated(client.get(ME, headers=headers), "missing_token")


def test_a_garbage_bearer_token_is_401(client):
    assert_unauthenticated(client.get(ME, headers=bearer("not.a.jwt")), "token_invalid")


# -- mini-program login (wx.login code → code2session) ------------------------------------------


def wxa_login(client, code: str):
    return client.post(WXA, json={"code": code})


def test_wxa_login_creates_a_parent_and_returns_tokens(client, wechat_stub):
    code = wechat_stub.add_code(openid="o-parent-first", unionid="u-parent-first")
    response = wxa_login(client, code)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["user"]["role"] == "parent"
    user = db.session.scalar(select(User).where(User.wxa_openid == "o-parent-first"))
    assert user is not None
    assert user.id == body["user"]["id"]
    assert user.role is Role.PARENT
    assert user.wechat_unionid == "u-parent-first"
    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id


def test_wxa_login_never_reveals_the_session_key(client, wechat_stub):
    code = wechat_stub.add_code()
    session_key = wechat_stub.session_for(code)["session_key"]
    response = wxa_login(client, code)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "session_key" not in text
    assert session_key not in text
    with db.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(select(AuditLog.__table__)) for v in row)
    assert session_key not in stored


def test_the_same_openid_logs_in_as_the_same_user(client, wechat_stub):
    first = wxa_login(client, wechat_stub.add_code(openid="o-returning"))
    second = wxa_login(client, wechat_stub.add_code(openid="o-returning"))
    assert first.status_code == second.status_code == 200
    assert first.get_json()["user"]["id"] == second.get_json()["user"]["id"]
    count = db.session.scalar(
        select(func.count()).select_from(User).where(User.wxa_openid == "o-returning")
    )
    assert count == 1


def test_wxa_login_sends_code2session_exactly_as_wechat_documents(client, wechat_stub):
    code = wechat_stub.add_code()
    assert wxa_login(client, code).status_code == 200
    [call] = wechat_stub.calls_to("/sns/jscode2session")
    assert call.method == "GET"
    assert call.query["appid"] == wechat_stub.appid
    assert call.query["secret"] == wechat_stub.secret
    assert call.query["js_code"] == code
    assert call.query["grant_type"] == "authorization_code"


def test_wxa_login_fetches_no_access_token(client, wechat_stub):
    """code2session needs none; fetching one would invalidate the token other servers hold
    for the mini-program and needs the server's IP on WeChat's whitelist."""
    wechat_stub.ip_whitelisted = False
    assert wxa_login(client, wechat_stub.add_code()).status_code == 200
    assert wechat_stub.calls_to("/cgi-bin/token") == []
    [call] = wechat_stub.calls_to("/sns/jscode2session")
    assert "access_token" not in call.query
    assert wechat_stub.access_tokens == []


def test_an_invalid_code_is_401(client, wechat_stub):
    assert_unauthenticated(wxa_login(client, "0never-issued-code"), "wxa_invalid_code")
    assert len(wechat_stub.calls_to("/sns/jscode2session")) == 1


def test_an_expired_code_is_401(client, wechat_stub):
    code = wechat_stub.add_code(expires_in=0)
    assert_unauthenticated(wxa_login(client, code), "wxa_invalid_code")


def test_a_code_used_twice_is_401(client, wechat_stub):
    code = wechat_stub.add_code()
    assert wxa_login(client, code).status_code == 200
    assert_unauthenticated(wxa_login(client, code), "wxa_code_used")


def test_an_empty_code_is_refused_without_asking_wechat(client, wechat_stub):
    response = wxa_login(client, "")
    assert response.status_code == 422
    assert response.get_json()["error"] == "unprocessable"
    assert wechat_stub.requests == []


def test_wechat_busy_is_502_upstream_error(client, wechat_stub):
    code = wechat_stub.add_code()
    wechat_stub.busy = True
    response = wxa_login(client, code)
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "upstream_error"
    assert body["reason"] == "wechat_busy"
    assert body["message"] == "微信系统繁忙，请稍后再试"
    assert "access_token" not in body


def test_wechat_unreachable_is_502_upstream_error(client, wechat_stub):
    code = wechat_stub.add_code()
    wechat_stub.stop()
    response = wxa_login(client, code)
    assert response.status_code == 502
    assert response.get_json()["error"] == "upstream_error"
    assert response.get_json()["message"]


def test_wechat_not_answering_is_502_after_the_timeout(app, client, wechat_stub):
    app.config["WECHAT_HTTP_TIMEOUT_S"] = 0.3
    code = wechat_stub.add_code()
    wechat_stub.hang = True
    started = time.perf_counter()
    response = wxa_login(client, code)
    assert response.status_code == 502
    assert response.get_json()["error"] == "upstream_error"
    assert time.perf_counter() - started < 5


def test_wechat_rate_limit_is_429(client, wechat_stub):
    wechat_stub.rate_limit_per_minute = 1
    assert wxa_login(client, wechat_stub.add_code()).status_code == 200
    response = wxa_login(client, wechat_stub.add_code())
    assert response.status_code == 429
    assert response.get_json()["error"] == "rate_limited"
    assert response.get_json()["message"]


def test_a_wrong_mini_program_secret_is_502_not_a_user_error(app, client, wechat_stub):
    app.config["WXA_APP_SECRET"] = "not-the-secret"
    response = wxa_login(client, wechat_stub.add_code())
    assert response.status_code == 502
    assert response.get_json()["error"] == "upstream_error"
    [call] = wechat_stub.calls_to("/sns/jscode2session")
    assert call.query["secret"] == "not-the-secret"


def test_a_deactivated_parent_cannot_log_in_by_wechat(client, wechat_stub):
    assert wxa_login(client, wechat_stub.add_code(openid="o-banned")).status_code == 200
    db.session.execute(update(User).where(User.wxa_openid == "o-banned").values(is_active=False))
    db.session.commit()
    assert_unauthenticated(wxa_login(client, wechat_stub.add_code(openid="o-banned")))


def test_a_staff_wechat_identity_cannot_log_in_by_mini_program(client, wechat_stub):
    staff(wxa_openid="o-staff-member")
    response = wxa_login(client, wechat_stub.add_code(openid="o-staff-member"))
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert "access_token" not in response.get_json()
