"""Signed HLS files for the embedded default (nginx serves them with secure_link in
production). Every request carries the token in its path and is checked before any file."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from flask import Blueprint, current_app, request
from werkzeug.utils import send_from_directory
from werkzeug.wsgi import FileWrapper

from app.errors import Forbidden, NotFound
from app.services.watch import HLS_FILE_RE, check_token, suspended_stream_refusal

bp = Blueprint("hls", __name__)

# Not the server's own file wrapper (wsgi.file_wrapper): under gunicorn's gevent worker it ends in
# gevent's socket.sendfile, which is no sendfile(2) but a loop of 8 KiB sends, and that was half
# the worker's time on a segment. Werkzeug's wrapper in 64 KiB blocks serves a segment with a few
# sendall calls for ≈30 % less CPU; larger blocks gained little more and cost memory for each
# slow download.
SEND_BLOCK = 64 * 1024


def _large_blocks(file: IO[bytes], buffer_size: int) -> FileWrapper:
    return FileWrapper(file, SEND_BLOCK)


@bp.get("/hls/<token>/<int:camera_id>/<filename>")
def hls_file(token: str, camera_id: int, filename: str):
    refusal = check_token(token, camera_id, current_app.config["HLS_SIGNING_KEY"])
    if refusal == "token_expired":
        raise Forbidden("播放地址已过期，请刷新", reason=refusal)
    if refusal is not None:
        raise Forbidden("播放地址无效", reason=refusal)
    if not HLS_FILE_RE.fullmatch(filename):
        raise NotFound("找不到该文件")
    suspended = suspended_stream_refusal(camera_id)
    if suspended is not None:
        raise suspended
    folder = Path(current_app.config["HLS_ROOT"]) / str(camera_id)
    if not (folder / filename).is_file():
        raise NotFound("直播尚未就绪，请稍候", reason="stream_starting")
    playlist = filename.endswith(".m3u8")
    # Flask's send_from_directory with its own arguments, but not the server's file wrapper.
    response = send_from_directory(
        folder,
        filename,
        environ={**request.environ, "wsgi.file_wrapper": _large_blocks},
        mimetype="application/vnd.apple.mpegurl" if playlist else "video/mp2t",
        conditional=not playlist,
        max_age=current_app.get_send_file_max_age if playlist else 60,
        use_x_sendfile=current_app.config["USE_X_SENDFILE"],
        response_class=current_app.response_class,
        _root_path=current_app.root_path,
    )
    if playlist:
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers["Cache-Control"] = "public, max-age=60, immutable"
    return response
