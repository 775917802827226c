"""Multipart forms read without a schema: the photos they carry, and how large they may be."""

from __future__ import annotations

from flask import request

from app.errors import Unprocessable
from app.services import uploads


def photos_from_form(field: str = "photos") -> list[uploads.Photo]:
    """The files sent as `field`. A plain-text part of that name is refused rather than dropped:
    the client meant to attach a picture and would otherwise think it had."""
    if request.form.getlist(field):
        raise Unprocessable("照片须以文件形式上传", field=field)
    return [uploads.Photo(f.read(), f.filename or "") for f in request.files.getlist(field)]


def allow_photo_forms() -> None:
    """Before any API request is read: a multipart form (photos) may be as large as its photos
    allow (uploads.photo_form_limit); every other body keeps MAX_CONTENT_LENGTH. Set before the
    view runs, because the first read of the form applies the limit."""
    if request.path.startswith("/api/") and request.mimetype == "multipart/form-data":
        request.max_content_length = uploads.photo_form_limit()
