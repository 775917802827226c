"""The H5 app's shell and files as Flask serves them (the pages themselves: tests/test_web_*)."""

from __future__ import annotations

import pytest


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
