"""Parents in a real browser: signing in, the centre's rooms, the live kitchen playing through
the signed HLS URL, the closed-window state, and reporting a concern with a photo."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.extensions import db
from app.models import AreaKind, MealWindow
from tests import factories as f
from tests.web_support import photo_file, picture_varies, shoot, sign_in


def _open_all_day(centre) -> None:
    for window in centre.meal_windows:
        db.session.delete(window)
    db.session.add(
        MealWindow(
            centre_id=centre.id, label="全天", starts_at=time(0, 0), ends_at=time(23, 59, 59)
        )
    )


def _closed_now(centre) -> str:
    """Give the centre one meal window that does not include the present hour (Beijing)."""
    hour = datetime.now(ZoneInfo("Asia/Shanghai")).hour
    start = 3 if hour not in (3, 4) else 6
    for window in centre.meal_windows:
        db.session.delete(window)
    db.session.add(
        MealWindow(
            centre_id=centre.id, label="午餐", starts_at=time(start, 0), ends_at=time(start + 1, 0)
        )
    )
    return f"{start:02d}:00–{start + 1:02d}:00"


def test_a_parent_opens_a_room_and_the_kitchen_plays_live(app, phone, hls_stream):
    meilan = f.district()
    centre = f.centre(meilan, "阳光小树苗托管中心")
    cooking = f.camera(centre, AreaKind.COOKING)
    f.camera(centre, AreaKind.PREP)
    _open_all_day(centre)
    parent = f.parent_of(centre, display_name="张家长")
    db.session.commit()
    hls_stream(cooking.id)

    page = phone()
    page.goto("/")
    page.wait_for_selector("#login-username")
    shoot(page, "login", doc="login")
    sign_in(page, parent.username, f.PASSWORD)

    page.wait_for_selector(f"[data-centre='{centre.id}']")
    shoot(page, "parent-centres", doc="parent-centres")
    page.click(f"[data-centre='{centre.id}']")
    tile = page.locator(f".bk-tile[data-camera='{cooking.id}']")
    tile.wait_for()
    assert "操作间" in tile.inner_text()
    assert "观看直播" in tile.inner_text()
    assert "直播开放中" in page.inner_text(".bk-banner")
    shoot(page, "parent-centre", doc="parent-centre")

    tile.click()
    video = page.locator("video")
    page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return v && v.readyState >= 3 && v.currentTime > 1; }",
        timeout=20_000,
    )
    first = page.evaluate("document.querySelector('video').currentTime")
    page.wait_for_timeout(1500)
    state = page.evaluate(
        "() => { const v = document.querySelector('video'); return {t: v.currentTime,"
        " ready: v.readyState, error: v.error && v.error.code,"
        " mode: document.querySelector('.bk-player').dataset.mode,"
        " state: document.querySelector('.bk-player').dataset.state}; }"
    )
    assert state["t"] > first, "the picture does not move"
    assert state["ready"] >= 3
    assert state["error"] is None
    assert state["mode"] == "hls.js"
    assert state["state"] == "playing"
    assert picture_varies(video.screenshot()), "the video frame is blank"
    delay = page.inner_text(".bk-player__delay")
    assert delay.startswith("延迟 ") and delay.endswith(" 秒")
    assert 0 < float(delay.split()[1]) < 15
    # The playlist came through the signed URL of the watch API.
    assert page.evaluate(
        "performance.getEntriesByType('resource').some(e => /\\/hls\\/\\d{10}-[\\w-]{22}\\/"
        + str(cooking.id)
        + "\\/index\\.m3u8$/.test(e.name))"
    )
    shoot(page, "parent-live", doc="parent-live")
    assert page.page_errors == []


# Signed URLs that live 50 s: the player renews them 45 s before they lapse, i.e. at once.
@pytest.mark.parametrize("server_env", [{"HLS_TOKEN_TTL_S": "50"}])
def test_the_player_waits_for_the_stream_and_plays_on_across_a_renewed_signed_url(
    app, phone, hls_stream
):
    centre = f.centre(f.district())
    camera = f.camera(centre, AreaKind.WASHING)
    _open_all_day(centre)
    parent = f.parent_of(centre)
    db.session.commit()

    page = phone()
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/watch/{camera.id}?centre={centre.id}&room=清洗间")
    # No stream yet (the camera's encoder is starting): the player says so and keeps trying.
    page.wait_for_selector(".bk-player[data-state='waiting_stream']")
    assert "直播正在启动" in page.inner_text(".bk-player__message")
    hls_stream(camera.id)
    page.wait_for_selector(".bk-player[data-state='playing']", timeout=20_000)

    page.wait_for_selector(".bk-player[data-renewals]", timeout=15_000)
    before = page.evaluate("document.querySelector('video').currentTime")
    page.wait_for_timeout(2500)
    tokens = page.evaluate(
        "[...new Set(performance.getEntriesByType('resource')"
        ".map(e => (e.name.match(/\\/hls\\/([^/]+)\\/\\d+\\//) || [])[1]).filter(Boolean))]"
    )
    assert len(tokens) >= 2, "the renewed signed URL was never used"
    assert page.evaluate("document.querySelector('video').currentTime") > before + 1
    assert page.get_attribute(".bk-player", "data-state") == "playing"
    assert page.page_errors == []


def test_outside_the_meal_window_a_room_shows_its_hours_and_the_player_says_why(app, phone):
    meilan = f.district()
    centre = f.centre(meilan, "启航午托部")
    camera = f.camera(centre, AreaKind.COOKING)
    hours = _closed_now(centre)
    parent = f.parent_of(centre)
    db.session.commit()

    page = phone()
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/centre/{centre.id}")
    tile = page.locator(f".bk-tile[data-camera='{camera.id}']")
    tile.wait_for()
    assert f"开放时段 {hours}" in tile.inner_text()
    assert "当前不在直播开放时段" in page.inner_text(".bk-banner")

    tile.click()
    page.wait_for_selector(".bk-player[data-state='closed']")
    message = page.inner_text(".bk-player__message")
    assert "当前不在直播开放时段" in message and hours in message
    shoot(page, "parent-live-closed", doc="parent-live-closed")
    assert page.page_errors == []


def test_a_parent_reports_a_concern_with_a_photo_and_sees_it_listed(app, phone, tmp_path):
    meilan = f.district()
    f.agency(meilan)
    centre = f.centre(meilan, "博学少儿托管")
    parent = f.parent_of(centre)
    db.session.commit()
    photo = photo_file(tmp_path / "kitchen.png")

    page = phone()
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/concerns/new?centre={centre.id}")
    page.wait_for_selector("textarea[name=text]")
    page.wait_for_selector("select[name=area_id] option:nth-child(2)", state="attached")
    page.select_option("select[name=area_id]", label="操作间")
    page.fill("textarea[name=text]", "午餐时看到操作间的生肉和熟食放在同一个案板上。")
    page.set_input_files("input[data-input=album]", str(photo))
    page.wait_for_selector(".bk-uploader__file")
    page.check("input[name=anonymous]", force=True)
    shoot(page, "parent-concern-new", doc="parent-concern-new")
    page.click("[data-action=submit]")

    page.wait_for_selector(".bk-card__text")
    assert "生肉和熟食" in page.inner_text(".bk-card__text")
    assert "1 张照片" in page.inner_text(".bk-page")
    assert "对经营者匿名" in page.inner_text(".bk-page")

    page.click(".weui-tabbar__item:has-text('我的反映')")
    row = page.locator("[data-concern]").first
    row.wait_for()
    assert "生肉和熟食" in row.inner_text()
    assert "已提交" in row.inner_text()
    assert "受理期限" in row.inner_text()
    shoot(page, "parent-concerns", doc="parent-concerns")
    assert page.page_errors == []
