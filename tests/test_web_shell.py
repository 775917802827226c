"""The H5 app's shell and files as Flask serves them (the pages themselves: tests/test_web_*)."""

from __future__ import annotations

import pytest

from tests.web_support import PHONE, ROOT, outside_the_screen


@pytest.mark.parametrize("path", ["/", "/bind?code=7K3M9QXA"])
def test_the_app_shell_loads_its_modules_from_this_host_only(client, path):
    response = client.get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="zh-CN"' in page and "明厨亮灶" in page
    assert 'src="/assets/js/main.js"' in page and 'href="/assets/vendor/weui.min.css"' in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy


@pytest.mark.parametrize(
    "path", ["vendor/hls.mjs", "vendor/echarts.mjs", "vendor/socket.io.mjs", "js/player.js"]
)
def test_the_front_end_packages_are_served_from_the_vendor_folder(client, path):
    response = client.get(f"/assets/{path}")
    response.close()  # the file it streams
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"


# The check every browser test's screenshots go through (tests/web_support.py: shoot), on a
# page styled by app.css, which clips sideways overflow so a scroll width could not tell.
def _page_with(content: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body><div class="bk-view"><div class="bk-page"><p>明厨亮灶</p>{content}</div></div>'
        "</body></html>"
    )


@pytest.mark.parametrize(
    ("content", "sticks_out"),
    [
        ("", False),
        ('<div class="bk-card">' + "后厨" * 80 + "</div>", False),
        ('<div style="overflow-x: auto"><div style="width: 900px">可横向滑动</div></div>', False),
        ('<div class="bk-card" style="width: 400px">太宽</div>', True),
        (
            '<div class="weui-cells"><p style="white-space: nowrap">' + "长" * 40 + "</p></div>",
            True,
        ),
        ('<span class="bk-tag">' + "标签" * 30 + "</span>", True),
        ('<p class="bk-ellipsis">' + "省略" * 40 + "</p>", False),
    ],
)
def test_the_screen_width_check_finds_what_sticks_out_of_a_page_app_css_clips(
    browser, content, sticks_out
):
    context = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_content(_page_with(content))
        page.add_style_tag(path=str(ROOT / "app/web/static/vendor/weui.min.css"))
        page.add_style_tag(path=str(ROOT / "app/web/static/css/app.css"))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert bool(outside_the_screen(page, PHONE["width"])) is sticks_out
    finally:
        context.close()
