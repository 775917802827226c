"""What the browser tests share: the app served on a real port (the test's own migrated
instance, so rows made with the factories are there once committed), a real HLS stream made by
ffmpeg for the cameras, Debian's chromium driven by Playwright, signing in through the login
form, and screenshots at 375 and 320 px (test-artifacts/, git-ignored; with
BK_UPDATE_SCREENSHOTS=1 the 375-px ones named for the README are copied to docs/screenshots/)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageStat

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"width": 375, "height": 760}
NARROW = {"width": 320, "height": 640}
TIMEOUT_MS = 15_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra settings for the served app; a test parametrizes this name to change them."""
    return {}


@pytest.fixture
def live_server(app_config, app, tmp_path: Path, server_env: dict[str, str]) -> Iterator[str]:
    """`python -m app.serve` on a free port over the test's database (see
    tests/test_realtime_multiprocess.py); stopped before the `app` fixture empties it."""
    assert (ROOT / "app/web/static/vendor/hls.mjs").is_file(), "run scripts/setup.sh (npm ci)"
    port = _free_port()
    env = {
        **os.environ,
        "BK_ENV": "testing",
        "INSTANCE_PATH": app_config.INSTANCE_PATH,
        "HLS_ROOT": app_config.HLS_ROOT,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(ROOT),
        # The tests serve their own ffmpeg HLS streams into HLS_ROOT; the embedded media
        # supervisor would try to pull the factory cameras' unreachable RTSP URLs there.
        "EMBEDDED_MEDIA": "false",
        **server_env,
    }
    env.pop("REDIS_URL", None)
    if PG_URL:
        env["DATABASE_URL"] = PG_URL
    else:
        env.pop("DATABASE_URL", None)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise AssertionError((tmp_path / "server.log").read_text(errors="replace"))
        time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def hls_stream(app_config) -> Iterator[Callable[..., None]]:
    """`start(camera_id, *more)`: ffmpeg writes a live H.264 HLS stream (1-s segments, a
    running test pattern with a clock) where the signed URLs of those cameras lead. One encoder
    serves them all: the other cameras' folders link to the first one's."""
    processes: list[subprocess.Popen] = []

    def start(camera_id: int, *more: int) -> None:
        root = Path(app_config.HLS_ROOT)
        folder = root / str(camera_id)
        folder.mkdir(parents=True, exist_ok=True)
        for other in more:
            (root / str(other)).symlink_to(folder, target_is_directory=True)
        processes.append(
            subprocess.Popen(
                [
                    "ffmpeg",
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-re",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=640x360:rate=25",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    "25",
                    "-f",
                    "hls",
                    "-hls_time",
                    "1",
                    "-hls_list_size",
                    "6",
                    "-hls_flags",
                    "delete_segments+temp_file",
                    str(folder / "index.m3u8"),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright, once for every browser test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser, live_server):
    """`phone()` opens a new phone-sized page (its own storage: one signed-in user each);
    `phone(user_agent=…)` for a particular browser, e.g. WeChat's."""
    contexts = []

    def open_page(**options):
        context = browser.new_context(
            base_url=live_server,
            viewport=PHONE,
            device_scale_factor=1,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            is_mobile=True,
            has_touch=True,
            **options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda error: page.page_errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page, username: str, password: str) -> None:
    """Through the login form, as a person would."""
    page.goto("/")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("[data-action=login]")
    page.wait_for_function("() => !location.hash.startsWith('#/login')")


# Every element and every line of text on screen must lie within the layout viewport.
# Measured one by one because app.css clips sideways overflow on html, body and .bk-view (so
# scrollWidth never grows) and a mobile browser widens innerWidth to fit wide content. Left out:
# what a container meant to scroll sideways holds (the container itself is checked) and text
# cut short on purpose with an ellipsis. Text cut off by any other clipping box counts: the
# person cannot read it either.
_OUTSIDE_THE_SCREEN = """() => {
  const width = Math.min(document.documentElement.clientWidth,
                         window.visualViewport ? window.visualViewport.width : Infinity);
  const outermost = new Set([document.documentElement, document.body,
                             document.querySelector(".bk-view")]);
  const exempt = (el) => {
    for (let box = el.parentElement; box && !outermost.has(box); box = box.parentElement) {
      const style = getComputedStyle(box);
      if (["auto", "scroll"].includes(style.overflowX)) return true;
    }
    return false;
  };
  const ellipsised = (el) => {
    for (let box = el; box && !outermost.has(box); box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.textOverflow === "ellipsis" && style.overflowX !== "visible") return true;
    }
    return false;
  };
  const shown = (el) => el.checkVisibility({visibilityProperty: true});
  const sticksOut = (rect) => rect.width > 0 && rect.height > 0
    && (rect.left < -0.5 || rect.right > width + 0.5);
  const describe = (el) => el.tagName.toLowerCase()
    + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string"
        ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const where = (rect) => `[${Math.round(rect.left)}, ${Math.round(rect.right)}]`;
  const outside = [];
  for (const el of document.body.querySelectorAll("*")) {
    const rect = el.getBoundingClientRect();
    if (sticksOut(rect) && shown(el) && !exempt(el)) outside.push(describe(el) + " " + where(rect));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const el = text.parentElement;
    if (!text.data.trim() || !el) continue;
    range.selectNodeContents(text);
    const rect = range.getBoundingClientRect();
    if (sticksOut(rect) && shown(el) && !exempt(el) && !ellipsised(el)) {
      outside.push(`text "${text.data.trim().slice(0, 20)}" in ${describe(el)} ${where(rect)}`);
    }
  }
  return {width, outside};
}"""


def outside_the_screen(page, expected_width: int) -> list[str]:
    """What sticks out sideways, described (empty when the page fits the screen)."""
    found = page.evaluate(_OUTSIDE_THE_SCREEN)
    if found["width"] != expected_width:
        return [f"the page is laid out {found['width']} px wide, not {expected_width}"]
    return found["outside"]


def shoot(page, name: str, doc: str | None = None) -> None:
    """Screenshots at 375 and 320 px; fails when the page scrolls sideways at either width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(150)
    wide = outside_the_screen(page, PHONE["width"])
    assert not wide, f"{name}: wider than the screen at 375 px: {wide[:5]}"
    page.screenshot(path=str(ARTIFACTS / f"{name}-375.png"))
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(250)
    wide = outside_the_screen(page, NARROW["width"])
    assert not wide, f"{name}: wider than the screen at 320 px: {wide[:5]}"
    page.screenshot(path=str(ARTIFACTS / f"{name}-320.png"))
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    if doc and os.environ.get("BK_UPDATE_SCREENSHOTS"):
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / f"{name}-375.png", DOC_SCREENSHOTS / f"{doc}.png")


def picture_varies(png: bytes, min_stddev: float = 8.0) -> bool:
    """True when the picture is not one flat colour (a blank or black frame)."""
    with Image.open(BytesIO(png)) as image:
        stats = ImageStat.Stat(image.convert("L"))
    return stats.stddev[0] >= min_stddev


def photo_file(path: Path) -> Path:
    """A real PNG photo to upload (a gradient, so no check mistakes it for a blank)."""
    image = Image.new("RGB", (320, 240))
    image.putdata([(x % 256, y % 256, (x + y) % 256) for y in range(240) for x in range(320)])
    image.save(path, format="PNG")
    return path
