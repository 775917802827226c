"""A parent taps the official account's menu in WeChat: the H5 app signs them in through WeChat's
web authorisation without a password, and the invite link they scanned still leads to binding.
The browser carries WeChat's user agent; the WeChat stub plays the authorisation page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ParentLink, User
from app.services import parents
from tests import factories as f
from tests.stubs.wechat import WeChatStub
from tests.web_support import shoot

APPID, SECRET = "wx-official-account", "mp-test-secret"
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.103 Mobile Safari/537.36 XWEB/1300289 "
    "MMWEBSDK/20240404 MMWEBID/1234 MicroMessenger/8.0.49.2600(0x2800313B) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)


@pytest.fixture
def wechat():
    with WeChatStub(appid=APPID, secret=SECRET) as stub:
        yield stub


@pytest.fixture
def server_env(wechat) -> dict[str, str]:
    return {
        "WECHAT_APP_ID": APPID,
        "WECHAT_APP_SECRET": SECRET,
        "WECHAT_API_BASE": wechat.base_url,
        "WECHAT_OAUTH_BASE": wechat.base_url,
    }


def test_a_parent_from_the_menu_is_signed_in_by_wechat_and_binds_with_the_invite_link(
    app, phone, wechat, live_server
):
    centre = f.centre(f.district(), "阳光小树苗托管中心")
    operator = f.operator_of(centre)
    db.session.commit()
    code = parents.issue_code(operator, centre.id).code

    page = phone(user_agent=WECHAT_UA)
    page.goto("/")
    page.wait_for_selector("text=还没有绑定托管机构")
    assert page.url.startswith(live_server) and "code=" not in page.url
    shoot(page, "parent-wechat-first", doc="parent-wechat-first")
    db.session.rollback()  # read what the server wrote since
    parent = db.session.scalar(select(User).where(User.wechat_openid == wechat.oauth_openid))
    assert parent is not None and parent.role.value == "parent"

    # Later the parent scans the centre's QR code (a link to /bind?code=…) in a fresh web view.
    page = phone(user_agent=WECHAT_UA)
    page.goto(f"/bind?code={code}")
    page.wait_for_selector("[data-action=bind]")
    assert page.input_value("input[name=code]") == code
    page.click("[data-action=bind]")
    page.wait_for_selector("text=阳光小树苗托管中心")
    db.session.rollback()
    assert db.session.scalar(select(ParentLink).where(ParentLink.parent_id == parent.id))
    # One account, however many times WeChat signed the parent in.
    assert len(db.session.scalars(select(User)).all()) == 2  # the operator and the parent
    assert page.page_errors == []


def test_outside_wechat_the_login_page_offers_wechat_and_passwords(app, phone, wechat):
    page = phone()
    page.goto("/")
    page.wait_for_selector("[data-action=wechat]")
    assert page.is_visible("#login-username")
    page.click("[data-action=wechat]")
    page.wait_for_selector("text=还没有绑定托管机构")
    assert page.page_errors == []


def test_signing_out_inside_wechat_stays_signed_out(app, phone, wechat):
    page = phone(user_agent=WECHAT_UA)
    page.goto("/")
    page.wait_for_selector("text=还没有绑定托管机构")
    page.click(".weui-tabbar__item[href='#/me']")
    page.click("[data-action=logout]")
    page.click(".weui-dialog [data-answer=yes]")
    page.wait_for_selector("#login-username")
    page.wait_for_timeout(500)  # no authorisation round trip starts by itself
    assert page.is_visible("[data-action=wechat]")
    assert "/login" in page.url
    assert page.page_errors == []
