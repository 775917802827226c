"""Operators in a real browser: the inbox with open notices first and their deadline counting
down, acknowledging (签收) a notice, a closed notice's history, and what parents reported about
the centre with an anonymous parent shown as "一位家长"."""

from __future__ import annotations

import uuid

from app.extensions import db
from app.models import Finding, FindingCategory, ReviewMode, Severity
from app.services import concerns, notices
from tests import factories as f
from tests.web_support import shoot, sign_in


def _issued(centre, inspector, text: str, working_days: int):
    area = centre.areas[0]
    finding = Finding(
        centre_id=centre.id,
        area_id=area.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description=text,
        recorded_by_id=inspector.id,
    )
    db.session.add(finding)
    db.session.commit()
    draft = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=centre.id,
            finding_ids=(finding.id,),
            requirements=f"{text}，立即整改。",
            working_days=working_days,
        ),
    )
    return notices.issue(inspector, draft.id)


def test_an_operator_sees_the_open_notice_first_acknowledges_it_and_reads_the_history(app, phone):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    inspector = f.inspector_of(agency)
    operator = f.operator_of(centre)
    db.session.commit()
    # The open notice is the older one: list order is not just "newest first".
    open_notice = _issued(centre, inspector, "操作间地面有积水", working_days=5)
    closed = _issued(centre, inspector, "清洗间抹布未消毒", working_days=3)
    notices.respond(operator, closed.id, "抹布已全部更换并每日消毒。", [])
    notices.verify(
        inspector, closed.id, notices.ReviewInput(ReviewMode.LIVE_VIDEO, "视频复查：已整改。")
    )
    open_id, open_number, closed_id = open_notice.id, open_notice.number, closed.id
    days_left = (open_notice.deadline - notices.local_today()).days
    assert days_left > 2  # five working days away

    page = phone()
    sign_in(page, operator.username, f.PASSWORD)
    page.wait_for_selector("[data-notice]")
    order = [n.get_attribute("data-notice") for n in page.locator("[data-notice]").all()]
    assert order == [str(open_id), str(closed_id)]
    assert "待处理（1）" in page.inner_text(".bk-page")
    cell = page.locator(f"[data-open] [data-notice='{open_id}']")
    assert open_number in cell.inner_text()
    assert "已下发" in cell.inner_text()
    assert f"剩余 {days_left} 天" in cell.inner_text()
    done = page.locator(f"[data-closed] [data-notice='{closed_id}']")
    assert "复查通过" in done.inner_text() and "剩余" not in done.inner_text()

    # 签收: the status on screen changes, and the history records it.
    cell.click()
    page.wait_for_selector("[data-action=acknowledge]")
    assert "已下发" in page.inner_text(".bk-notice-head")
    page.click("[data-action=acknowledge]")
    page.wait_for_selector(".bk-notice-head:has-text('已签收')")
    assert page.locator("[data-action=acknowledge]").count() == 0
    assert page.locator("textarea[name=text]").count() == 1  # still to be answered
    latest = page.locator("[data-history] .bk-timeline__item").first
    assert "已签收" in latest.inner_text()
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "operator-acknowledged")

    # Back in the inbox the notice reads 已签收; the closed one keeps its whole history.
    page.click(".weui-tabbar__item:has-text('整改通知')")
    page.wait_for_selector(f"[data-open] [data-notice='{open_id}']:has-text('已签收')")
    page.click(f"[data-closed] [data-notice='{closed_id}']")
    page.wait_for_selector(".bk-notice-head:has-text('复查通过')")
    history = [x.inner_text() for x in page.locator("[data-history] .bk-timeline__title").all()]
    assert history == ["复查通过", "已回复待复查", "已下发"]
    answer = page.inner_text("[data-response]")
    assert "抹布已全部更换" in answer and "视频复查：已整改。" in answer
    assert page.locator("textarea[name=text]").count() == 0
    assert page.page_errors == []


def test_the_operator_sees_an_anonymous_concern_as_one_parent_never_who(app, phone):
    meilan = f.district()
    centre = f.centre(meilan, "阳光小树苗托管中心")
    operator = f.operator_of(centre)
    hidden = f.parent_of(
        centre, display_name="张家长", phone="13800138000", wechat_openid="o-zhang-openid-7"
    )
    named = f.parent_of(centre, display_name="李家长")
    db.session.commit()
    for parent, text, anonymous in (
        (hidden, "厨师没有戴口罩，生熟案板混用。", True),
        (named, "清洗间的抹布发黑。", False),
    ):
        concerns.submit(
            parent,
            concerns.ConcernInput(
                centre_id=centre.id, text=text, client_key=uuid.uuid4().hex, anonymous=anonymous
            ),
            [],
        )

    page = phone()
    sign_in(page, operator.username, f.PASSWORD)
    page.click(".weui-tabbar__item:has-text('家长反映')")
    page.wait_for_selector("[data-concern]")
    anonymous = page.locator("[data-concern]:has-text('厨师没有戴口罩')")
    assert concerns.ANONYMOUS_REPORTER in anonymous.inner_text()
    assert "已提交，待受理" in anonymous.inner_text()
    assert "李家长" in page.inner_text("[data-concern]:has-text('清洗间的抹布发黑')")
    # Nowhere on the page, nor in what the page fetched: the anonymous parent's identity.
    shown = page.content()
    fetched = page.evaluate(
        "async () => (await fetch('/api/v1/concerns', {headers: {Authorization: 'Bearer ' +"
        " JSON.parse(localStorage.getItem('bk.session')).access_token}})).text()"
    )
    for secret in ("张家长", "13800138000", "o-zhang-openid-7"):
        assert secret not in shown, secret
        assert secret not in fetched, secret
    shoot(page, "operator-concerns")
    assert page.page_errors == []
