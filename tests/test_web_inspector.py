"""Inspectors in a real browser: the dashboard's charts, and a remote patrol with the four rooms
live side by side that ends in an issued notice. Plus the technicians' and operators' status
pages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.extensions import db
from app.models import (
    AreaKind,
    CameraStatus,
    CentreStatus,
    CentreStatusChange,
    Finding,
    FindingCategory,
    ReviewMode,
    Severity,
    Snapshot,
    SnapshotReason,
)
from app.services import concerns, notices
from tests import factories as f
from tests.web_support import picture_varies, shoot, sign_in


def _finding(centre, inspector, text):
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description=text,
        recorded_by_id=inspector.id,
    )
    db.session.add(finding)
    db.session.commit()
    return finding


def _issued(centre, inspector, text):
    finding = _finding(centre, inspector, text)
    draft = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=centre.id, finding_ids=(finding.id,), requirements="整改", working_days=5
        ),
    )
    return notices.issue(inspector, draft.id)


def _went_live(*centres):
    for centre in centres:
        db.session.add(
            CentreStatusChange(
                centre_id=centre.id,
                from_status=CentreStatus.COMMISSIONING,
                to_status=CentreStatus.LIVE,
            )
        )


def test_the_dashboard_shows_the_jurisdictions_figures_and_clocks(app, phone):
    meilan = f.district()
    yanfeng = f.district("演丰镇", parent=meilan)  # below Meilan: in the same jurisdiction
    agency = f.agency(meilan)
    live = [f.centre(meilan, "阳光小树苗托管中心"), f.centre(meilan), f.centre(yanfeng)]
    f.centre(meilan, status=CentreStatus.COMMISSIONING)
    suspended = f.centre(meilan, status=CentreStatus.SUSPENDED)
    _went_live(*live, suspended)  # enrolled: went live once, suspended since or not
    elsewhere = f.centre(f.district("琼山区"))  # another jurisdiction: not counted
    _went_live(elsewhere)
    f.camera(elsewhere).status = CameraStatus.ONLINE
    for centre, status in zip(
        live + [suspended],
        [CameraStatus.ONLINE, CameraStatus.ONLINE, CameraStatus.OFFLINE, CameraStatus.STALLED],
        strict=True,
    ):
        f.camera(centre).status = status
    inspector = f.inspector_of(agency)
    operator = f.operator_of(live[1])
    parent = f.parent_of(live[0])
    db.session.commit()

    # Notices: one open, one past its deadline, one verified (closed).
    _issued(live[0], inspector, "操作间地面有积水")
    late = _issued(live[0], inspector, "储存间食品离地不足")
    late.deadline = notices.local_today() - dt.timedelta(days=1)
    db.session.commit()
    assert notices.mark_overdue() == [late.id]
    done = _issued(live[1], inspector, "清洗间抹布未消毒")
    notices.respond(operator, done.id, "已消毒", [])
    notices.verify(inspector, done.id, notices.ReviewInput(ReviewMode.LIVE_VIDEO))
    # Concerns: one six weeks old (past its clock), one fresh.
    weeks_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=42)
    old = concerns.submit(
        parent,
        concerns.ConcernInput(centre_id=live[0].id, text="米面直接放在地上", client_key="old"),
        [],
        now=weeks_ago,
    ).view
    fresh = concerns.submit(
        parent,
        concerns.ConcernInput(centre_id=live[0].id, text="厨师没有戴口罩", client_key="fresh"),
        [],
    ).view

    page = phone()
    sign_in(page, inspector.username, f.PASSWORD)
    page.wait_for_selector(".bk-dashboard[data-loaded]")
    page.wait_for_selector("[data-coverage][data-loaded]")
    assert page.inner_text("[data-kpi=centres]") == "5"
    assert page.inner_text("[data-kpi=online]").replace("\n", "") == "2/4"
    assert page.inner_text("[data-kpi=open]") == "2"
    assert page.inner_text("[data-kpi=overdue]") == "1"
    assert "bk-kpi_danger" in page.locator(".bk-kpi:has([data-kpi=overdue])").get_attribute("class")

    # Coverage: enrolled centres, by district, cameras by state.
    assert page.inner_text("[data-coverage=enrolled]") == "4"
    assert "已接入 4 家" in page.inner_text(".bk-coverage__headline")
    assert page.inner_text("[data-coverage=live]") == "3"
    rows = {
        row.get_attribute("data-district"): (
            row.locator("[data-live]").inner_text(),
            row.locator("[data-total]").inner_text(),
        )
        for row in page.locator("[data-district]").all()
    }
    assert rows == {"美兰区": ("2", "4"), "演丰镇": ("1", "1")}
    cameras = {
        key: page.inner_text(f"[data-camera-count={key}]")
        for key in ("online", "offline", "stalled")
    }
    assert cameras == {"online": "2", "offline": "1", "stalled": "1"}

    # Parents' concerns on their clocks: the overdue one first, marked.
    assert page.inner_text("[data-concerns-open]") == "2"
    assert page.inner_text("[data-concerns-overdue]") == "1"
    cells = page.locator("[data-clock-concern]")
    assert [c.get_attribute("data-clock-concern") for c in cells.all()] == [
        str(old["id"]),
        str(fresh["id"]),
    ]
    assert cells.nth(0).get_attribute("data-overdue") == "true"
    assert "已逾期" in cells.nth(0).inner_text()
    assert "bk-concern-clock_overdue" in cells.nth(0).locator("[data-clock]").get_attribute("class")
    assert "米面直接放在地上" in cells.nth(0).inner_text()
    assert cells.nth(1).get_attribute("data-overdue") == "false"
    assert "剩余" in cells.nth(1).inner_text() and "受理期限" in cells.nth(1).inner_text()

    # The latest findings, newest first.
    findings = [x.inner_text() for x in page.locator("[data-recent-finding] .bk-ellipsis").all()]
    assert findings == ["清洗间抹布未消毒", "储存间食品离地不足", "操作间地面有积水"]

    for name in ("centres", "cameras", "notices"):
        chart = page.locator(f"[data-chart={name}]")
        assert chart.locator("canvas").count() == 1, f"{name}: no canvas"
        assert picture_varies(chart.screenshot(), min_stddev=4), f"{name}: the chart is blank"
    shoot(page, "inspector-dashboard", doc="inspector-dashboard")

    # Clicking a concern on the clock opens it.
    cells.nth(0).click()
    page.wait_for_selector(f"[data-concern-page='{old['id']}']")
    assert page.page_errors == []


IMAGE_SHOWN = (
    "sel => { const i = document.querySelector(sel);"
    " return !!i && i.complete && i.naturalWidth > 0; }"
)


def test_a_patrol_plays_the_four_rooms_and_issues_a_notice_from_a_finding(app, phone, hls_stream):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    # Snapshots are pulled from the camera's own address: the built-in simulated camera.
    cameras = [
        f.camera(centre, kind, url=f"sim://{kind.value}?width=640&height=360")
        for kind in f.AREA_NAMES
    ]
    inspector = f.inspector_of(agency)
    db.session.commit()
    hls_stream(*(c.id for c in cameras))
    prep = next(a for a in centre.areas if a.kind is AreaKind.PREP)
    cooking = next(a for a in centre.areas if a.kind is AreaKind.COOKING)

    page = phone()
    sign_in(page, inspector.username, f.PASSWORD)
    page.goto("/#/inspector/centres")
    page.click(f"[data-centre='{centre.id}']")
    page.wait_for_function(
        "() => { const v = [...document.querySelectorAll('.bk-room video')];"
        " return v.length === 4 && v.every(x => x.readyState >= 3 && x.currentTime > 0.5); }",
        timeout=25_000,
    )
    shoot(page, "inspector-patrol", doc="inspector-patrol")

    page.click("[data-action=start]")
    page.wait_for_selector("[data-action=end]")
    page.click(f"[data-area='{prep.id}'] [data-action=ok]")
    page.wait_for_selector(f"[data-area='{prep.id}'] [data-check]:has-text('正常')")

    # 抓拍 in the cooking room: the picture appears in the room's tile.
    room = f"[data-area='{cooking.id}']"
    page.click(f"{room} [data-action=snapshot]")
    page.wait_for_function(IMAGE_SHOWN, arg=f"{room} [data-shots] img")
    assert page.locator(f"{room} [data-shots] img").count() == 1
    snapshot_id = page.get_attribute(f"{room} [data-shots] img", "data-snapshot")
    assert page.locator(f"[data-area='{prep.id}'] [data-shots] img").count() == 0
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "inspector-patrol-snapshot")

    # A finding in that room offers the snapshot as evidence, ticked.
    page.click(f"{room} [data-action=finding]")
    evidence = page.locator(f"[data-evidence] input[value='{snapshot_id}']")
    assert evidence.is_checked()
    page.wait_for_function(IMAGE_SHOWN, arg="[data-evidence] img")
    page.select_option("select[name=category]", "pests")
    page.select_option("select[name=severity]", "I")
    page.fill("textarea[name=description]", "操作间墙角发现蟑螂")
    page.click("[data-action=save-finding]")
    finding = page.locator("[data-finding]:has-text('操作间墙角发现蟑螂')")
    finding.wait_for()
    assert "抓拍 1 张" in finding.inner_text()
    assert "发现问题 1 项" in page.inner_text(f"{room} [data-check]")

    page.click("[data-action=notice]")
    page.fill("input[name=working_days]", "3")
    page.click("[data-action=issue]")
    page.wait_for_selector(".bk-notice-head__number")
    number = page.inner_text(".bk-notice-head__number")
    assert number.startswith("美兰市监整〔") and number.endswith("〕1号")
    assert "已下发" in page.inner_text(".bk-notice-head")
    assert "操作间墙角发现蟑螂" in page.inner_text(".bk-page")
    # The notice's finding carries the snapshot as its evidence, shown with it.
    evidence_img = f"[data-notice-finding] img[data-snapshot='{snapshot_id}']"
    page.wait_for_function(IMAGE_SHOWN, arg=evidence_img)
    db.session.rollback()  # end the test's read, to see what the server wrote
    shot = db.session.get(Snapshot, int(snapshot_id))
    assert (shot.reason, shot.camera_id) == (SnapshotReason.PATROL, cameras[2].id)
    recorded = db.session.scalar(select(Finding).where(Finding.patrol_id == shot.patrol_id))
    assert [s.id for s in recorded.snapshots] == [shot.id]
    assert page.page_errors == []


def test_a_technician_sees_the_centres_assigned_and_an_operator_the_cameras(app, phone):
    meilan = f.district()
    installing = f.centre(meilan, "快乐成长托管班", status=CentreStatus.INSTALLING)
    f.centre(meilan, "明德课后托管", status=CentreStatus.INVITED)  # not assigned
    technician = f.technician_for(installing)
    live = f.centre(meilan, "阳光小树苗托管中心")
    f.camera(live, AreaKind.COOKING).status = CameraStatus.ONLINE
    f.camera(live, AreaKind.WASHING).status = CameraStatus.OFFLINE
    operator = f.operator_of(live)
    db.session.commit()

    page = phone()
    sign_in(page, technician.username, f.PASSWORD)
    page.wait_for_selector(f"[data-centre='{installing.id}']")
    assert page.locator("[data-centre]").count() == 1
    assert "安装中" in page.inner_text(f"[data-centre='{installing.id}']")
    shoot(page, "technician-centres", doc="technician-centres")
    page.click(f"[data-centre='{installing.id}']")
    page.wait_for_selector("[data-action=start]")
    assert "尚未开始调试" in page.inner_text("[data-checklist]")

    page = phone()
    sign_in(page, operator.username, f.PASSWORD)
    page.click(".weui-tabbar__item:has-text('摄像头')")
    page.wait_for_selector("[data-camera]")
    text = page.inner_text("[data-list]")
    assert "操作间" in text and "在线" in text
    assert "清洗间" in text and "离线" in text
    shoot(page, "operator-cameras", doc="operator-cameras")
    assert page.page_errors == []
