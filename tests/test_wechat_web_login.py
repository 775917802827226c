"""Parents opening the H5 app from the official account are signed in by WeChat's web
authorisation (网页授权, snsapi_base): the app asks where to send the browser, WeChat (the stub,
enforcing the account's appid, authorised domain, scope and single-use codes) sends it back with
a code, and the code becomes our tokens for the parent with that openid."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import Role, User
from tests import factories as f
from tests.stubs.wechat import WeChatStub

APPID, SECRET = "wx-official-account", "mp-test-secret"


@pytest.fixture
def wechat():
    with WeChatStub(appid=APPID, secret=SECRET) as stub:
        yield stub


@pytest.fixture
def app_config(app_config, wechat):
    return dataclasses.replace(
        app_config,
        WECHAT_APP_ID=APPID,
        WECHAT_APP_SECRET=SECRET,
        WECHAT_API_BASE=wechat.base_url,
        WECHAT_OAUTH_BASE=wechat.base_url,
        PUBLIC_URL="http://127.0.0.1:8080",
    )


def _code_from_wechat(client, state: str = "s1") -> str:
    """What the in-app browser does: ask the app where to go, follow it, come back with a code."""
    answer = client.get(f"/api/v1/auth/wechat/authorize?state={state}")
    assert answer.status_code == 200, answer.get_json()
    url = answer.get_json()["url"]
    assert url.endswith("#wechat_redirect") and "scope=snsapi_base" in url
    back = requests.get(url.split("#")[0], allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text  # WeChat accepted the appid, domain and scope
    location = urlsplit(back.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:8080/"
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def test_a_parent_new_to_the_app_is_signed_in_by_their_openid(client, wechat):
    response = client.post("/api/v1/auth/wechat", json={"code": _code_from_wechat(client)})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["user"]["role"] == "parent"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    parent = db.session.scalar(select(User).where(User.wechat_openid == wechat.oauth_openid))
    assert parent is not None and parent.role is Role.PARENT
    # No centre yet: the home page asks for an invite code.
    centres = client.get(
        "/api/v1/parent/centres", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert centres.get_json() == []


def test_the_parent_the_chat_bot_knows_is_the_same_account(client, wechat):
    centre = f.centre(f.district())
    known = f.parent_of(centre, wechat_openid=wechat.oauth_openid)
    db.session.commit()
    for _ in range(2):
        body = client.post("/api/v1/auth/wechat", json={"code": _code_from_wechat(client)})
        assert body.get_json()["user"]["id"] == known.id
    assert db.session.scalar(select(func.count(User.id))) == 1


def test_a_code_is_good_once(client, wechat):
    code = _code_from_wechat(client)
    assert client.post("/api/v1/auth/wechat", json={"code": code}).status_code == 200
    again = client.post("/api/v1/auth/wechat", json={"code": code})
    assert again.status_code == 401
    assert again.get_json()["message"] == "微信授权已使用，请重新进入"
    unknown = client.post("/api/v1/auth/wechat", json={"code": "0" * 32})
    assert unknown.status_code == 401


def test_staff_are_sent_to_their_password_login(client, wechat):
    operator = f.operator_of(f.centre(f.district()))
    operator.wechat_openid = wechat.oauth_openid
    db.session.commit()
    refused = client.post("/api/v1/auth/wechat", json={"code": _code_from_wechat(client)})
    assert refused.status_code == 403
    assert "请使用账号密码登录" in refused.get_json()["message"]


@pytest.mark.parametrize("state", ["", "a" * 65, "x y", "<script>"])
def test_a_bad_state_is_a_400(client, state):
    response = client.get("/api/v1/auth/wechat/authorize", query_string={"state": state})
    assert response.status_code in (400, 422)
    assert response.get_json()["error"] in ("bad_request", "unprocessable")


def test_wechat_down_is_a_502_and_no_account_is_made(client, wechat):
    code = _code_from_wechat(client)
    wechat.unavailable = True
    response = client.post("/api/v1/auth/wechat", json={"code": code})
    assert response.status_code == 502
    assert response.get_json()["error"] == "upstream_error"
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_without_an_official_account_it_says_so(app, client):
    app.config["WECHAT_APP_ID"] = None
    response = client.get("/api/v1/auth/wechat/authorize?state=s1")
    assert response.status_code == 502
    assert response.get_json()["message"] == "公众号网页授权未配置"
