"""The notice loop in two browsers at once: the operator answers with a photo from the phone, the
inspector's dashboard shows the answer the moment it arrives (Socket.IO, no reload) and the
inspector verifies it; the operator's open page follows."""

from __future__ import annotations

from app.extensions import db
from app.models import AreaKind, Finding, FindingCategory, Severity
from app.services import notices
from tests import factories as f
from tests.web_support import photo_file, shoot, sign_in

PHOTO_SHOWN = (
    "() => { const i = document.querySelector('[data-response] img[data-response-photo]');"
    " return !!i && i.complete && i.naturalWidth > 0; }"
)


def _issued_notice(centre, inspector, area_kind=AreaKind.COOKING):
    area = next(a for a in centre.areas if a.kind is area_kind)
    finding = Finding(
        centre_id=centre.id,
        area_id=area.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description="操作间地面有积水和食物残渣",
        recorded_by_id=inspector.id,
    )
    db.session.add(finding)
    db.session.commit()
    draft = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=centre.id,
            finding_ids=(finding.id,),
            requirements="清理操作间地面并保持干燥，提交整改后的照片。",
            legal_basis="《餐饮服务食品安全操作规范》",
            working_days=5,
        ),
    )
    return notices.issue(inspector, draft.id)


def test_an_answer_with_a_photo_appears_live_for_the_inspector_who_verifies_it(
    app, phone, tmp_path
):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    inspector = f.inspector_of(agency)
    operator = f.operator_of(centre)
    db.session.commit()
    notice = _issued_notice(centre, inspector)
    number, notice_id = notice.number, notice.id
    photo = photo_file(tmp_path / "after.png")

    # The inspector watches the dashboard; nothing waits for review yet.
    desk = phone()
    sign_in(desk, inspector.username, f.PASSWORD)
    desk.wait_for_selector(".bk-dashboard[data-loaded] [data-review] [data-state=empty]")
    desk.wait_for_selector("body.bk-realtime-on")
    desk.evaluate("window.__notReloaded = true")

    # The operator opens the notice from the inbox: open first, the deadline counting down.
    mobile = phone()
    sign_in(mobile, operator.username, f.PASSWORD)
    cell = mobile.locator(f"[data-open] [data-notice='{notice_id}']")
    cell.wait_for()
    assert number in cell.inner_text()
    assert "剩余" in cell.inner_text()
    shoot(mobile, "operator-inbox", doc="operator-inbox")
    cell.click()
    mobile.wait_for_selector("textarea[name=text]")
    assert "操作间地面有积水" in mobile.inner_text(".bk-page")
    mobile.fill("textarea[name=text]", "已清理地面积水，加装防滑垫，每餐后专人清扫。")
    mobile.set_input_files("input[data-input=camera]", str(photo))
    mobile.wait_for_selector(".bk-uploader__file")
    shoot(mobile, "operator-notice", doc="operator-notice")
    mobile.click("[data-action=respond]")
    answer = mobile.locator("[data-response]")
    answer.wait_for()
    assert "第 1 次回复" in answer.inner_text()
    assert "附照片 1 张" in answer.inner_text()
    assert "已回复待复查" in mobile.inner_text(".bk-notice-head")
    mobile.wait_for_function(PHOTO_SHOWN)  # the operator sees what was sent

    # It appears on the inspector's dashboard without a reload.
    row = desk.locator(f"[data-review-notice='{notice_id}']")
    row.wait_for(timeout=10_000)
    assert number in row.inner_text()
    assert desk.evaluate("window.__notReloaded === true")
    shoot(desk, "inspector-dashboard-answer")

    row.click()
    desk.wait_for_selector("[data-action=verify]")
    review = desk.locator("[data-response]")
    assert "已清理地面积水" in review.inner_text()
    assert "附照片 1 张" in review.inner_text()
    # The inspector sees the photo itself before deciding: the picture the operator sent.
    desk.wait_for_function(PHOTO_SHOWN)
    assert desk.evaluate(
        "(() => { const i = document.querySelector('[data-response] img[data-response-photo]');"
        " return [i.naturalWidth, i.naturalHeight, i.src.startsWith('blob:')]; })()"
    ) == [320, 240, True]
    desk.click("[data-response] img[data-response-photo]")  # full screen, closed by a tap
    desk.wait_for_selector(".bk-gallery .weui-gallery__img")
    desk.click(".bk-gallery")
    desk.wait_for_selector(".bk-gallery", state="detached")
    desk.select_option("select[name=mode]", "live_video")
    desk.fill(".bk-review textarea[name=note]", "视频复查：地面干燥整洁。")
    shoot(desk, "inspector-review", doc="inspector-review")
    desk.click("[data-action=verify]")
    desk.wait_for_selector(".bk-notice-head:has-text('复查通过')")
    assert "视频复查" in desk.inner_text(".bk-notice-head")
    assert desk.locator("[data-action=verify]").count() == 0

    # The operator's page, still open, follows the review.
    mobile.wait_for_selector(".bk-notice-head:has-text('复查通过')", timeout=10_000)
    assert "视频复查：地面干燥整洁。" in mobile.inner_text("[data-response]")
    assert desk.page_errors == [] and mobile.page_errors == []


def test_an_inspector_returns_an_answer_with_a_reason_and_logs_a_follow_up(app, phone):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan)
    inspector = f.inspector_of(agency)
    operator = f.operator_of(centre)
    db.session.commit()
    notice = _issued_notice(centre, inspector)
    notices.respond(operator, notice.id, "已整改", [])
    notice_id = notice.id

    desk = phone()
    sign_in(desk, inspector.username, f.PASSWORD)
    desk.goto(f"/#/inspector/notice/{notice_id}")
    desk.wait_for_selector("[data-action=return]")
    desk.click("[data-action=return]")
    assert "请填写退回理由" in desk.inner_text(".weui-toptips")
    desk.fill(".bk-review textarea[name=note]", "照片看不清地面，请重新拍摄。")
    desk.click("[data-action=return]")
    desk.wait_for_selector(".bk-notice-head:has-text('已退回重新整改')")
    desk.fill(".bk-follow-up input[name=contact]", "负责人李先生")
    desk.fill(".bk-follow-up textarea[name=outcome]", "电话告知退回原因，承诺明天补拍。")
    desk.click("[data-action=follow-up]")
    desk.wait_for_selector("[data-history]:has-text('负责人李先生')")
    assert "照片看不清地面" in desk.inner_text("[data-history]")
    shoot(desk, "inspector-notice-returned")
    assert desk.page_errors == []
