"""Inspectors triage parents' concerns in a real browser: the list under 待受理 with its
受理期限 clock (an overdue one marked), a new concern arriving live, the detail with the parent's
photo (fetched with the bearer token), accepting and resolving it, and a colleague's decision
taken meanwhile answered with the API's Chinese message."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from app.extensions import db
from app.models import AreaKind
from app.services import concerns, uploads
from tests import factories as f
from tests.web_support import photo_file, shoot, sign_in


def _submit(base_url: str, username: str, centre, area_kind: AreaKind, text: str, photo: Path):
    """The parent's own API call: multipart text and a photo, as the H5 form sends it."""
    login = requests.post(
        f"{base_url}/api/v1/auth/login",
        json={"username": username, "password": f.PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    area = next(a for a in centre.areas if a.kind is area_kind)
    response = requests.post(
        f"{base_url}/api/v1/parent/concerns",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        data={
            "centre_id": str(centre.id),
            "area_id": str(area.id),
            "text": text,
            "client_key": uuid.uuid4().hex,
        },
        files=[("photos", (photo.name, photo.read_bytes(), "image/png"))],
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _chinese_date(iso_day: str) -> str:
    year, month, day = (int(part) for part in iso_day.split("-"))
    return f"{year}年{month}月{day}日"


def test_an_inspector_accepts_and_resolves_a_concern_with_a_photo(
    app, phone, live_server, tmp_path
):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    parent = f.parent_of(centre, display_name="张家长", phone="13800138000")
    inspector = f.inspector_of(agency)
    inspector.display_name = "王监管"
    colleague = f.inspector_of(agency)
    db.session.commit()
    photo = photo_file(tmp_path / "kitchen.png")

    # A concern six weeks old, past both clocks (made by the service with its `now`).
    weeks_ago = dt.datetime.now(ZoneInfo("Asia/Shanghai")) - dt.timedelta(days=42)
    old = concerns.submit(
        parent,
        concerns.ConcernInput(
            centre_id=centre.id, text="储存间的米面直接放在地上。", client_key=uuid.uuid4().hex
        ),
        [uploads.Photo(photo.read_bytes(), "old.png")],
        now=weeks_ago.astimezone(dt.UTC),
    ).view
    fresh = _submit(
        live_server,
        parent.username,
        centre,
        AreaKind.COOKING,
        "午餐时看到操作间的生肉和熟食放在同一个案板上，厨师也没有戴口罩。",
        photo,
    )

    # The list opens under 待受理: both, the old one marked overdue, the fresh one counting down.
    page = phone()
    sign_in(page, inspector.username, f.PASSWORD)
    page.click(".weui-tabbar__item:has-text('家长反映')")
    cell = page.locator(f"[data-concern='{fresh['id']}']")
    cell.wait_for()
    assert "待受理" in page.inner_text(".weui-navbar .weui-bar__item_on")
    text = cell.inner_text()
    assert "阳光小树苗托管中心" in text and "操作间" in text
    assert "生肉和熟食" in text
    assert "已提交，待受理" in text
    assert f"受理期限 {_chinese_date(fresh['decide_by'])}" in text
    assert "剩余" in text
    assert cell.get_attribute("data-overdue") == "false"
    late = page.locator(f"[data-concern='{old['id']}']")
    assert late.get_attribute("data-overdue") == "true"
    assert "已逾期" in late.inner_text()
    assert "bk-concern-clock_overdue" in late.locator("[data-clock]").get_attribute("class")

    # A new concern arrives while the list is open: it appears without a reload.
    page.wait_for_selector("body.bk-realtime-on")
    page.evaluate("window.__notReloaded = true")
    newer = _submit(
        live_server, parent.username, centre, AreaKind.WASHING, "清洗间的抹布发黑发臭。", photo
    )
    page.locator(f"[data-concern='{newer['id']}']").wait_for(timeout=10_000)
    assert page.evaluate("window.__notReloaded === true")
    assert page.inner_text("[data-filter=submitted] [data-count]").strip() == "3"

    page.click("[data-filter=overdue]")
    page.wait_for_selector(f"[data-concern='{fresh['id']}']", state="detached")
    assert page.locator("[data-concern]").count() == 1
    page.click("[data-filter=accepted]")
    page.wait_for_selector("[data-state=empty]:has-text('没有处理中的家长反映')")
    page.click("[data-filter=all]")
    assert page.locator("[data-concern]").count() == 3
    page.click("[data-filter=submitted]")
    page.wait_for_selector(".bk-toast", state="detached")  # the new-concern toast
    shoot(page, "inspector-concerns", doc="inspector-concerns")

    # The detail: text, room, the photo through the bearer token, the reporter, the clocks.
    page.click(f"[data-concern='{fresh['id']}']")
    page.wait_for_function(
        "() => { const i = document.querySelector('img[data-photo]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.evaluate("document.querySelector('img[data-photo]').src.startsWith('blob:')")
    head = page.inner_text(".bk-concern-head")
    assert "已提交，待受理" in head and "操作间" in head and "生肉和熟食" in head
    assert f"受理期限：{_chinese_date(fresh['decide_by'])}" in head
    assert f"办结期限：{_chinese_date(fresh['resolve_by'])}" in head
    reporter = page.inner_text("[data-reporter]")
    assert "张家长" in reporter and "13800138000" in reporter
    shoot(page, "inspector-concern")
    page.click("img[data-photo]")  # full screen, closed by a tap
    page.wait_for_selector(".bk-gallery .weui-gallery__img")
    page.click(".bk-gallery")
    page.wait_for_selector(".bk-gallery", state="detached")
    page.click("[data-action=dismiss]")
    assert "请填写不予受理的理由" in page.inner_text(".weui-toptips")

    # 受理, with a note the parent will read.
    page.fill(".bk-triage textarea[name=note]", "已安排执法人员核查该托管机构操作间。")
    page.click("[data-action=accept]")
    page.wait_for_selector(".bk-concern-head [data-status-label]:has-text('已受理，正在处理')")
    assert "王监管" in page.inner_text("[data-assignee]")
    assert "已安排执法人员核查" in page.inner_text("[data-history]")
    assert page.locator("[data-action=accept]").count() == 0

    # 办结, with the explanation.
    page.fill(".bk-resolve textarea[name=answer]", "经视频核查，已责令生熟分开存放并规范佩戴口罩。")
    page.click("[data-action=resolve]")
    page.wait_for_selector(".bk-concern-head [data-status-label]:has-text('已办结')")
    assert "责令生熟分开" in page.inner_text("[data-answer]")
    assert "已办结" in page.inner_text("[data-clock=办结期限]")
    assert page.locator(".bk-resolve").count() == 0
    assert page.locator("[data-history] .bk-timeline__item").count() == 3
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "inspector-concern-resolved")

    # A colleague accepts the old one while it is open here: 受理 then gets the API's reason.
    page.goto(f"/#/inspector/concern/{old['id']}")
    page.wait_for_selector("[data-action=accept]")
    assert "已逾期" in page.inner_text(".bk-concern-head")
    concerns.accept(colleague, old["id"])
    page.click("[data-action=accept]")
    page.wait_for_selector(".weui-toptips:has-text('不能执行此操作')")
    page.wait_for_selector(".bk-concern-head [data-status-label]:has-text('已受理，正在处理')")
    assert page.page_errors == []
