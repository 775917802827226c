"""Multipart forms read without a schema: the photos they carry."""

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
