"""Parents in a real browser: signing in, the centre's rooms, its inspection record and today's
snapshots, the live kitchen playing through the signed HLS URL (hls.js, and the browser's own
HLS as on iOS), a real RTSP camera going offline and coming back, the closed-window state, and
reporting a concern with a photo."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, time
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from app.extensions import db
from app.models import AreaKind, FindingCategory, MealWindow, PatrolMode, Severity, SnapshotReason
from app.services import notices, patrols
from app.services import snapshots as snapshot_service
from media import snapshot as media_snapshot
from tests import factories as f
from tests.media_helpers import fakecam_factory
from tests.web_support import photo_file, picture_varies, shoot, sign_in

BEIJING = ZoneInfo("Asia/Shanghai")
# The player's <video> as a phone's browser sees it.
VIDEO_STATE = """() => { const v = document.querySelector('video'); return {t: v.currentTime,
  ready: v.readyState, error: v.error && v.error.code, src: v.src,
  mode: document.querySelector('.bk-player').dataset.mode,
  state: document.querySelector('.bk-player').dataset.state}; }"""
PLAYING = (
    "() => { const v = document.querySelector('video');"
    " return v && v.readyState >= 3 && v.currentTime > 1 && !v.paused; }"
)


@pytest.fixture
def start_fakecam():
    with fakecam_factory() as start:
        yield start


def _assert_it_plays(page) -> None:
    """The picture moves, is buffered ahead, has no error and is not blank."""
    page.wait_for_function(PLAYING, timeout=20_000)
    first = page.evaluate(VIDEO_STATE)
    page.wait_for_timeout(1500)
    state = page.evaluate(VIDEO_STATE)
    assert state["t"] > first["t"], "the picture does not move"
    assert state["ready"] >= 3
    assert state["error"] is None
    assert state["state"] == "playing"
    assert picture_varies(page.locator("video").screenshot()), "the video frame is blank"


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
    # Inline playback inside WeChat (iOS WebKit and Android's X5 browser would otherwise take
    # the video full screen in their own player), and a poster until the first frame.
    for attribute in ("playsinline", "webkit-playsinline", "x5-playsinline"):
        assert video.get_attribute(attribute) is not None, attribute
    assert video.get_attribute("x5-video-player-type") == "h5-page"
    assert page.evaluate("document.querySelector('video').playsInline") is True
    poster = page.evaluate("document.querySelector('video').poster")
    assert poster.endswith("/assets/img/poster.svg")
    assert page.evaluate(f"fetch('{poster}').then(r => r.ok && r.headers.get('content-type'))")
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


def test_without_media_source_extensions_the_player_uses_the_browsers_own_hls(
    app, phone, hls_stream
):
    """iOS WeChat has no MSE, so hls.js cannot run there: the player hands the signed playlist
    to the <video> itself. Chromium plays HLS natively as well, so the picture must move."""
    centre = f.centre(f.district())
    camera = f.camera(centre, AreaKind.COOKING)
    _open_all_day(centre)
    parent = f.parent_of(centre)
    db.session.commit()
    hls_stream(camera.id)

    page = phone()
    page.context.add_init_script(
        "delete window.MediaSource; delete window.ManagedMediaSource;"
        " delete window.WebKitMediaSource;"
    )
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/watch/{camera.id}?centre={centre.id}&room=操作间")
    _assert_it_plays(page)
    state = page.evaluate(VIDEO_STATE)
    assert state["mode"] == "native"
    # The signed playlist URL itself, not a blob: URL of hls.js's MediaSource.
    assert re.search(rf"/hls/\d{{10}}-[\w-]{{22}}/{camera.id}/index\.m3u8$", state["src"]), state
    assert page.evaluate("typeof MediaSource") == "undefined"
    assert page.page_errors == []


# The served app runs its own media supervisor (the embedded default) on a real RTSP camera:
# what the parent sees went RTSP → ffmpeg → signed HLS → the player.
@pytest.mark.parametrize("server_env", [{"EMBEDDED_MEDIA": "true"}])
def test_a_real_camera_plays_then_shows_offline_while_it_is_down_and_plays_again_when_back(
    app, phone, start_fakecam
):
    feed = start_fakecam(width=640, height=360)
    centre = f.centre(f.district(), "阳光小树苗托管中心")
    camera = f.camera(centre, AreaKind.COOKING, url=feed.url)
    _open_all_day(centre)
    parent = f.parent_of(centre)
    db.session.commit()

    page = phone()
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/watch/{camera.id}?centre={centre.id}&room=操作间")
    _assert_it_plays(page)
    assert page.evaluate(VIDEO_STATE)["mode"] == "hls.js"
    assert page.inner_text("[data-status]") == "直播中"
    # Every state the player shows from now on, in order.
    page.evaluate(
        "window.__notReloaded = true; window.__states = [];"
        " new MutationObserver(() => window.__states.push("
        "document.querySelector('.bk-player').dataset.state))"
        ".observe(document.querySelector('.bk-player'),"
        " {attributes: true, attributeFilter: ['data-state']});"
    )

    feed.stop()
    page.wait_for_selector(".bk-player[data-state='offline']", timeout=15_000)
    message = page.inner_text(".bk-player__message")
    assert message.startswith("摄像头离线，正在重试…"), message
    assert "最后画面" in message
    assert page.inner_text("[data-status]") == message
    assert page.is_visible(".bk-player__action:has-text('立即重试')")
    # It stays offline while the camera is down (it used to say the stream was starting).
    page.wait_for_timeout(4000)
    assert page.get_attribute(".bk-player", "data-state") == "offline"
    shoot(page, "parent-live-offline")
    states = page.evaluate("window.__states")
    assert "waiting_stream" not in states[states.index("offline") :], states

    feed.start()
    page.wait_for_selector(".bk-player[data-state='playing']", timeout=25_000)
    _assert_it_plays(page)
    assert page.evaluate("window.__notReloaded") is True
    assert page.inner_text("[data-status]") == "直播中"
    assert page.page_errors == []


def _jpeg_shooter(camera_id: int, url: str) -> media_snapshot.Snapshot:
    """Stands in for the camera when the snapshot is taken (a gradient: not a covered lens)."""
    image = Image.new("RGB", (640, 360))
    image.putdata([(x % 256, y % 256, (x * y) % 256) for y in range(360) for x in range(640)])
    buffer = BytesIO()
    image.save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    return media_snapshot.Snapshot(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        taken_at=datetime.now(UTC),
        source="pull",
    )


def test_the_centre_page_shows_todays_snapshots_and_the_inspection_record(app, client, phone):
    meilan = f.district()
    agency = f.agency(meilan)
    centre = f.centre(meilan, "博学少儿托管")
    cooking = f.camera(centre, AreaKind.COOKING)
    _open_all_day(centre)
    parent = f.parent_of(centre)
    inspector = f.inspector_of(agency)
    db.session.commit()
    area_id = cooking.area_id

    page = phone()
    sign_in(page, parent.username, f.PASSWORD)
    page.goto(f"/#/parent/centre/{centre.id}")
    page.wait_for_selector(".bk-record")
    assert "今天还没有抓拍" in page.inner_text(".bk-snapshots-empty")
    assert "暂无巡查记录" in page.inner_text(".bk-record")

    # A remote patrol finds a problem, with a snapshot, and a notice is issued for it.
    patrol = patrols.start_patrol(inspector, centre.id, PatrolMode.REMOTE)
    shot = snapshot_service.take(
        inspector, cooking.id, SnapshotReason.PATROL, _jpeg_shooter, patrol.id
    )
    finding = patrols.record_finding(
        inspector,
        patrol.id,
        patrols.FindingInput(
            category=FindingCategory.HYGIENE,
            severity=Severity.II,
            description="操作间地面有积水",
            area_id=area_id,
            snapshot_ids=(shot.id,),
        ),
    )
    patrols.end_patrol(inspector, patrol.id)
    draft = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=centre.id, finding_ids=(finding.id,), requirements="清理积水", working_days=5
        ),
    )
    notices.issue(inspector, draft.id)
    shot_id = shot.id
    api_page = client.get(
        f"/api/v1/parent/centres/{centre.id}", headers=f.login(client, parent.username)
    ).get_json()
    record = api_page["record"]
    assert [s["id"] for s in api_page["snapshots_today"]] == [shot_id]

    page.reload()
    image = page.locator(f"img[data-snapshot-img='{shot_id}']")
    image.wait_for()
    page.wait_for_function(
        f"() => document.querySelector(\"img[data-snapshot-img='{shot_id}']\").naturalWidth > 0"
    )
    assert page.evaluate(
        f"[...document.querySelectorAll('img[data-snapshot-img=\"{shot_id}\"]')]"
        ".map(i => [i.naturalWidth, i.naturalHeight])"
    ) == [[640, 360]]
    taken = datetime.fromisoformat(api_page["snapshots_today"][0]["taken_at"]).astimezone(BEIJING)
    assert page.inner_text(".bk-snapshot__caption") == f"操作间 · {taken:%H:%M}"
    assert page.locator(".bk-snapshots-empty").count() == 0

    summary = page.inner_text(".bk-record")
    ended = datetime.fromisoformat(record["last_patrol"]["ended_at"]).astimezone(BEIJING)
    assert f"{ended:%m/%d %H:%M} · 远程巡查 · {record['last_patrol']['result']}" in summary
    assert record["last_patrol"]["result"] == "发现 1 个问题"
    assert record["notices"] == {"open": 1, "overdue": 0, "verified": 0}
    assert "整改中的问题\n1 项" in summary
    assert "已整改复查通过\n0 项" in summary
    shoot(page, "parent-centre-snapshots")

    image.click()
    page.wait_for_selector(".bk-gallery .weui-gallery__img")
    page.click(".bk-gallery")
    page.wait_for_selector(".bk-gallery", state="detached")
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
