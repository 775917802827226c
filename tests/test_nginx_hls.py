"""The production nginx config checks the same signed HLS URLs the app issues."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.services.watch import token_for

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
KEY = "nginx-test-signing-key"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    assert Path(NGINX).exists(), "nginx is installed by scripts/services.sh"
    prefix = tmp_path_factory.mktemp("nginx")
    hls_root = prefix / "hls"
    (hls_root / "7").mkdir(parents=True)
    (hls_root / "7" / "index.m3u8").write_text("#EXTM3U\n")
    (hls_root / "7" / "seg_3.ts").write_bytes(b"\x47" * 376)
    (prefix / "secret.txt").write_text("not for you")
    port = _free_port()
    (prefix / "hls-key.conf").write_text(f'set $hls_signing_key "{KEY}";\n')
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    include {DEPLOY}/hls-maps.conf;
    server {{
        listen 127.0.0.1:{port};
        set $hls_root {hls_root};
        include {prefix}/hls-key.conf;
        include {DEPLOY}/hls-location.conf;
    }}
}}
"""
    )
    check = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
    process.stderr.close()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_nginx_serves_a_playlist_signed_by_the_app(nginx):
    token = token_for(7, int(time.time()) + 300, KEY)
    status, headers, body = fetch(f"{nginx}/hls/{token}/7/index.m3u8")
    assert status == 200
    assert body == b"#EXTM3U\n"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"


def test_nginx_serves_segments_cacheable(nginx):
    token = token_for(7, int(time.time()) + 300, KEY)
    status, headers, body = fetch(f"{nginx}/hls/{token}/7/seg_3.ts")
    assert status == 200
    assert len(body) == 376
    assert "max-age=60" in headers["Cache-Control"]


@pytest.mark.parametrize(
    "path",
    [
        "/hls/7/index.m3u8",  # unsigned
        "/hls/{forged}/7/index.m3u8",
        "/hls/{expired}/7/index.m3u8",
        "/hls/{other_camera}/7/index.m3u8",
        "/hls/{token}/7/../../secret.txt",
        "/hls/{token}/7/%2e%2e%2f%2e%2e%2fsecret.txt",
    ],
)
def test_nginx_refuses_what_the_app_would_refuse(nginx, path):
    now = int(time.time())
    url = nginx + path.format(
        forged=token_for(7, now + 300, "wrong-key"),
        expired=token_for(7, now - 5, KEY),
        other_camera=token_for(8, now + 300, KEY),
        token=token_for(7, now + 300, KEY),
    )
    status, _, body = fetch(url)
    assert status in (400, 403, 404)
    assert b"not for you" not in body
