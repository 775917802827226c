"""Signed HLS files for the embedded default (nginx serves them with secure_link in
production). Every request carries the token in its path and is checked before any file."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from app.errors import Forbidden, NotFound
from app.services.watch import HLS_FILE_RE, check_token

bp = Blueprint("hls", __name__)


@bp.get("/hls/<token>/<int:camera_id>/<filename>")
def hls_file(token: str, camera_id: int, filename: str):
    refusal = check_token(token, camera_id, current_app.config["HLS_SIGNING_KEY"])
    if refusal == "token_expired":
        raise Forbidden("播放地址已过期，请刷新", reason=refusal)
    if refusal is not None:
        raise Forbidden("播放地址无效", reason=refusal)
    if not HLS_FILE_RE.fullmatch(filename):
        raise NotFound("找不到该文件")
    folder = Path(current_app.config["HLS_ROOT"]) / str(camera_id)
    if not (folder / filename).is_file():
        raise NotFound("直播尚未就绪，请稍候", reason="stream_starting")
    playlist = filename.endswith(".m3u8")
    response = send_from_directory(
        folder,
        filename,
        mimetype="application/vnd.apple.mpegurl" if playlist else "video/mp2t",
        conditional=not playlist,
        max_age=None if playlist else 60,
    )
    if playlist:
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers["Cache-Control"] = "public, max-age=60, immutable"
    return response
