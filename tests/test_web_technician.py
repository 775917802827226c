"""A technician at the centre, phone in hand: registers the cooking room's camera by its RTSP
address, starts commissioning and runs the automatic checks against the real (test) camera."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AreaKind, CentreStatus
from tests import factories as f
from tests.media_helpers import fakecam_factory
from tests.web_support import shoot, sign_in

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
