"""The mobile web app (H5) that parents, operators, inspectors and technicians hold in their
hands inside WeChat: one page shell, plain ES modules under static/js/ that speak the JSON API
and Socket.IO, WeUI for the look. The npm packages (WeUI, hls.js, ECharts, socket.io-client) are
copied into static/vendor/ by `npm ci` in scripts/setup.sh; nothing third-party is committed."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, render_template

STATIC = Path(__file__).resolve().parent / "static"

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    # /static belongs to the app itself; the H5 app's files live under /assets.
    static_url_path="/assets",
)

# Everything the pages load comes from this host: scripts and styles from /assets, media and
# photos from the signed HLS URLs and the API (blob: for hls.js and photo previews), the API
# and Socket.IO from the same origin. ECharts and WeUI set inline styles.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'self'",
    ]
)


def _shell():
    vendor_ready = (STATIC / "vendor" / "hls.mjs").is_file()
    if not vendor_ready:
        current_app.logger.warning(
            "app/web/static/vendor is empty: run scripts/setup.sh (npm ci) for the H5 app"
        )
    response = current_app.make_response(
        render_template(
            "index.html",
            demo=current_app.config["DEMO_MODE"],
            vendor_ready=vendor_ready,
            # Parents inside WeChat are signed in by the official account's web authorisation.
            wechat_login=bool(
                current_app.config.get("WECHAT_APP_ID")
                and current_app.config.get("WECHAT_APP_SECRET")
            ),
        )
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # The shell is tiny and names no user data; always revalidate so a new release is seen.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def index():
    """The H5 app. Pages are addressed by the fragment (#/parent, #/inspector/…): WeChat's
    in-app browser keeps the path it was opened with, and the server needs no route per page."""
    return _shell()


@bp.get("/bind")
def bind():
    """Where a centre's invite QR code points (`/bind?code=…`): the app opens the bind page."""
    return _shell()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
