"""The signed-in session in a real browser: signing out forgets the tokens and revokes the
refresh token on the server; a page whose API call fails shows its error state with a retry
that works."""

from __future__ import annotations

import requests

from app.extensions import db
from app.models import CentreStatus
from tests import factories as f
from tests.web_support import shoot, sign_in

SERVER_ERROR = {"error": "internal_error", "message": "服务器内部错误，请稍后再试"}


def test_signing_out_forgets_the_tokens_and_revokes_the_refresh_token(app, phone, live_server):
    centre = f.centre(f.district(), "阳光小树苗托管中心")
    operator = f.operator_of(centre)
    db.session.commit()

    page = phone()
    sign_in(page, operator.username, f.PASSWORD)
    page.wait_for_selector("[data-list] [data-state=empty]")  # the inbox, no notices yet
    session = page.evaluate("JSON.parse(localStorage.getItem('bk.session'))")
    tokens = (session["access_token"], session["refresh_token"])

    page.click(".weui-tabbar__item:has-text('我的')")
    page.click("[data-action=logout]")
    with page.expect_response("**/api/v1/auth/logout") as logout:
        page.click(".bk-dialog [data-answer=yes]")
    assert logout.value.status == 204
    page.wait_for_selector("#login-username")
    assert page.evaluate("location.hash").startswith("#/login")

    # Nothing of the session is left in the browser's storage.
    stored = page.evaluate(
        "() => [localStorage, sessionStorage].flatMap(s =>"
        " Object.keys(s).map(k => k + '=' + s.getItem(k))).join('\\n')"
    )
    assert page.evaluate("localStorage.getItem('bk.session')") is None
    for token in tokens:
        assert token not in stored
    # The old refresh token is dead on the server.
    refused = requests.post(
        f"{live_server}/api/v1/auth/refresh", json={"refresh_token": tokens[1]}, timeout=10
    )
    assert refused.status_code == 401
    assert refused.json()["error"] and refused.json()["message"]
    # And a reload stays signed out.
    page.goto("/#/operator")
    page.wait_for_selector("#login-username")
    assert page.page_errors == []


def test_a_failed_call_shows_the_error_state_and_retry_loads_the_page(app, phone):
    meilan = f.district()
    agency = f.agency(meilan)
    for status in (CentreStatus.LIVE, CentreStatus.LIVE, CentreStatus.INSTALLING):
        f.centre(meilan, status=status)
    inspector = f.inspector_of(agency)
    db.session.commit()

    page = phone()
    failed = []

    def fail_once(route):
        if failed:
            route.continue_()
        else:
            failed.append(route.request.url)
            route.fulfill(status=500, json=SERVER_ERROR)

    page.route("**/api/v1/dashboard", fail_once)
    sign_in(page, inspector.username, f.PASSWORD)
    error = page.locator("[data-kpis] [data-state=error]")
    error.wait_for()
    assert SERVER_ERROR["message"] in error.inner_text()
    assert page.locator(".bk-dashboard[data-loaded]").count() == 0
    assert page.locator("[data-kpi]").count() == 0
    shoot(page, "error-state")

    error.locator("[data-action=retry]").click()
    page.wait_for_selector(".bk-dashboard[data-loaded]")
    assert page.locator("[data-kpis] [data-state=error]").count() == 0
    assert page.inner_text("[data-kpi=centres]") == "3"
    assert len(failed) == 1
    assert page.page_errors == []
