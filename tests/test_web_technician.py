"""A technician at the centre, phone in hand: registers the cooking room's camera by its RTSP
address, starts commissioning and runs the automatic checks against the real (test) camera;
then, with every room's camera in place, reads each item's result, is refused sign-off while an
item fails, fixes it and signs the centre live."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import AreaKind, Camera, CameraStatus, Centre, CentreStatus, utcnow
from app.services import onboarding, uploads
from tests import factories as f
from tests.media_helpers import fakecam_factory
from tests.web_support import photo_file, shoot, sign_in

CAMERA_PASSWORD = "Wq3-kitchen"


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"PROBE_READ_SECONDS": "3"}


@pytest.fixture
def camera_feed():
    with fakecam_factory() as start:
        yield start(auth=f"admin:{CAMERA_PASSWORD}")


def test_a_technician_registers_a_camera_and_the_probe_measures_it(
    app, phone, camera_feed, live_server, tmp_path
):
    centre = f.centre(f.district(), "快乐成长托管班", status=CentreStatus.INSTALLING)
    technician = f.technician_for(centre)
    db.session.commit()
    cooking = next(a for a in centre.areas if a.kind is AreaKind.COOKING)
    washing = next(a for a in centre.areas if a.kind is AreaKind.WASHING)
    url = camera_feed.url_with_credentials("admin", CAMERA_PASSWORD)

    page = phone()
    sign_in(page, technician.username, f.PASSWORD)
    page.goto(f"/#/technician/centre/{centre.id}")
    page.wait_for_selector(f"[data-area='{cooking.id}']")
    assert page.locator(".bk-camera-area:has-text('未登记')").count() == 4

    room = page.locator(f"[data-area='{cooking.id}']")
    room.locator("[data-action=camera-add]").click()
    room.locator("input[name=name]").fill("灶台")
    room.locator("input[name=rtsp_url]").fill(url)
    room.locator("[data-action=camera-save]").click()
    page.wait_for_selector(f"[data-area='{cooking.id}'] [data-camera]")
    shown = room.inner_text()
    assert "灶台" in shown and "尚未检测" in shown
    assert f"rtsp://***@127.0.0.1:{camera_feed.port}/cam" in shown
    assert page.locator(".bk-camera-area:has-text('未登记')").count() == 3

    # The same camera again for another room: refused, and the page says why.
    other = page.locator(f"[data-area='{washing.id}']")
    other.locator("[data-action=camera-add]").click()
    other.locator("input[name=rtsp_url]").fill(url)
    other.locator("[data-action=camera-save]").click()
    page.wait_for_selector(".weui-toptips:has-text('同一路视频流不能重复登记')")
    assert other.locator("[data-camera]").count() == 0

    page.click("[data-action=start]")
    page.wait_for_selector("[data-action=probe]")
    page.click("[data-action=probe]")
    page.wait_for_selector(
        f"[data-area='{cooking.id}'] [data-probe]:has-text('1280×720')", timeout=30_000
    )
    assert "H.264" in room.locator("[data-probe]").inner_text()
    assert "25 帧/秒" in room.locator("[data-probe]").inner_text()
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "technician-cameras", doc="technician-cameras")

    room.locator("[data-action=camera-toggle]").click()
    page.wait_for_selector(f"[data-area='{cooking.id}'] :text('（已停用）')")

    assert CAMERA_PASSWORD not in page.content()
    assert CAMERA_PASSWORD not in (tmp_path / "server.log").read_text(errors="replace")
    assert page.page_errors == []


def _streaming_for_an_hour(camera: Camera) -> None:
    """What the media supervisor reports of a camera that has streamed for an hour (the
    commissioning rules want every room covered by an online camera, online for a while)."""
    camera.status = CameraStatus.ONLINE
    camera.status_changed_at = utcnow() - timedelta(hours=1)


def test_a_technician_reads_the_results_is_refused_while_one_fails_and_signs_off(
    app, phone, tmp_path
):
    centre = f.centre(f.district(), "快乐成长托管班", status=CentreStatus.INSTALLING)
    technician = f.technician_for(centre)
    db.session.commit()
    onboarding.start_commissioning(technician, centre.id)
    # Every room has a camera (the built-in simulated ones); the cooking room's sends 360p.
    for kind in f.AREA_NAMES:
        size = "?width=640&height=360" if kind is AreaKind.COOKING else ""
        _streaming_for_an_hour(f.camera(centre, kind, url=f"sim://{kind.value}{size}"))
    db.session.commit()
    items = {item.code: item.id for item in onboarding.active_standard().items}
    photo = photo_file(tmp_path / "evidence.png")
    for code in ("camera_angle", "staff_informed"):
        onboarding.record_manual(
            technician, centre.id, items[code], "", [uploads.Photo(photo.read_bytes(), "a.png")]
        )
    cooking = next(a for a in centre.areas if a.kind is AreaKind.COOKING)
    centre_id = centre.id

    def item(code: str):
        return page.locator(f".bk-check-item[data-item='{items[code]}']")

    page = phone()
    sign_in(page, technician.username, f.PASSWORD)
    page.goto(f"/#/technician/centre/{centre_id}")
    page.wait_for_selector("[data-action=probe]")
    assert page.inner_text("[data-centre-status]") == "调试中"
    assert "待检查" in item("resolution").inner_text()

    # The probe judges the automatic items: all pass but the resolution, which says why.
    page.click("[data-action=probe]")
    item("resolution").locator(".weui-cell__ft:has-text('未通过')").wait_for(timeout=30_000)
    for code in ("area_coverage", "stream_reachable", "codec_h264", "frame_rate"):
        assert "通过" in item(code).locator(".weui-cell__ft").inner_text(), code
        assert "未通过" not in item(code).inner_text(), code
    assert "4 路摄像头均通过" in item("keyframe_interval").inner_text()
    assert "四个区域均已安装" in item("area_coverage").inner_text()
    detail = item("resolution").locator("[data-detail]").inner_text()
    assert detail == "未通过：操作间摄像头（640x360）"
    banner = page.inner_text("[data-banner]")
    assert "还有 2 项必检项目未通过" in banner
    assert "分辨率不低于 720p" in banner and "温馨提示" in banner
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "technician-checklist")

    # Signing now is refused with the items that block it; the centre stays as it was.
    page.click("[data-action=sign-off]")
    refusal = page.locator(".weui-toptips")
    refusal.wait_for()
    assert "以下必检项尚未通过" in refusal.inner_text()
    assert "分辨率不低于 720p" in refusal.inner_text()
    assert page.inner_text("[data-centre-status]") == "调试中"

    # The signage photo, uploaded here; the cooking camera switched to its 720p stream.
    item("signage_photo").locator("[data-action=evidence]").click()
    item("signage_photo").locator("input[data-input=camera]").set_input_files(str(photo))
    page.wait_for_selector(".bk-uploader__file")
    item("signage_photo").locator("[data-action=save-evidence]").click()
    page.wait_for_selector(
        f".bk-check-item[data-item='{items['signage_photo']}'] :text('照片 1 张')"
    )
    room = page.locator(f"[data-area='{cooking.id}']")
    room.locator("[data-action=camera-edit]").click()
    room.locator("input[name=rtsp_url]").fill("sim://cooking")
    room.locator("[data-action=camera-save]").click()
    page.wait_for_selector(f"[data-area='{cooking.id}'] [data-probe]:has-text('尚未检测')")
    # The new address starts over as "unknown"; this server runs no media supervisor, so the
    # status it would report once the stream has run for a while is written here.
    db.session.rollback()
    _streaming_for_an_hour(
        next(c for c in db.session.get(Centre, centre_id).cameras if c.area_id == cooking.id)
    )
    db.session.commit()
    page.click("[data-action=probe]")
    page.wait_for_selector("[data-banner]:has-text('所有必检项目均已通过')", timeout=30_000)
    assert "未通过" not in item("resolution").inner_text()

    page.click("[data-action=sign-off]")
    page.wait_for_selector("[data-banner]:has-text('已于')")
    assert page.inner_text("[data-banner]").endswith("签字验收")
    page.wait_for_selector("[data-centre-status=live]")
    assert page.inner_text("[data-centre-status]") == "已上线"
    assert "weui-btn_disabled" in page.get_attribute("[data-action=sign-off]", "class")
    db.session.rollback()  # end the test's read, to see what the server wrote
    assert db.session.get(Centre, centre_id).status is CentreStatus.LIVE
    page.wait_for_selector(".bk-toast", state="detached")
    shoot(page, "technician-signed-off")
    assert page.page_errors == []
