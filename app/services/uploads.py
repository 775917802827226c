"""Photos from operators and parents: type sniffed from the bytes (never the file name or the
client's content type), size-limited, stored content-addressed under the instance folder.

Parents' photos lose their metadata (EXIF: where the phone was, which phone, when) before they
are stored: a concern needs the picture, not the parent's location. Operators' and technicians'
photos are kept exactly as sent: they are evidence, taken in the kitchen."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from app.errors import Unprocessable
from app.models import Attachment, AttachmentKind

ALLOWED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding
# The most photos one form carries (a concern's nine, a notice answer's nine), and room for its
# text fields and multipart framing besides.
MAX_PHOTOS_PER_FORM = 9
FORM_TEXT_BYTES = 1024 * 1024


def photo_form_limit() -> int:
    """The largest photo form (multipart body) accepted: as many photos as a form may carry,
    each at the per-photo limit (UPLOAD_MAX_BYTES), and their text. Other bodies keep the
    smaller MAX_CONTENT_LENGTH, so nine full-size phone photos fit without letting a JSON
    body be as large."""
    return MAX_PHOTOS_PER_FORM * current_app.config["UPLOAD_MAX_BYTES"] + FORM_TEXT_BYTES


@dataclass(frozen=True)
class Photo:
    data: bytes
    filename: str = ""


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    sha256: str
    content_type: str
    extension: str


def check_photos(
    photos: list[Photo], max_count: int, *, strip_metadata: bool = False
) -> list[CheckedPhoto]:
    """Validate every photo before anything is written: all pass or the request fails.
    ``strip_metadata``: store each picture re-saved without EXIF (upright, as it was shown)."""
    if len(photos) > max_count:
        raise Unprocessable(f"最多上传 {max_count} 张照片", field="photos")
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    checked = []
    for index, photo in enumerate(photos, start=1):
        label = photo.filename or f"第 {index} 张照片"
        if not photo.data:
            raise Unprocessable(f"{label}是空文件", field="photos")
        if len(photo.data) > limit:
            raise Unprocessable(
                f"{label}超过 {limit // (1024 * 1024)} MB 的大小限制", field="photos"
            )
        try:
            with Image.open(io.BytesIO(photo.data)) as image:
                fmt = image.format
                if image.width * image.height > MAX_PIXELS:
                    raise Unprocessable(f"{label}尺寸过大", field="photos")
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise Unprocessable(f"{label}不是可识别的图片", field="photos") from exc
        if fmt not in ALLOWED_FORMATS:
            raise Unprocessable(f"{label}格式不支持，请上传 JPG、PNG 或 WebP", field="photos")
        content_type, extension = ALLOWED_FORMATS[fmt]
        data = _without_metadata(photo.data, fmt, label) if strip_metadata else photo.data
        checked.append(
            CheckedPhoto(data, hashlib.sha256(data).hexdigest(), content_type, extension)
        )
    return checked


def _without_metadata(data: bytes, fmt: str, label: str) -> bytes:
    """The picture re-saved in its own format with no EXIF, XMP or ICC text; a turned photo
    (EXIF orientation) is turned for good first, so it still stands the way the phone showed
    it. An upright JPEG keeps its own quantisation tables (no visible loss)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            turned = image.getexif().get(ExifTags.Base.Orientation, 1) not in (1, None)
            picture = ImageOps.exif_transpose(image) if turned else image
            out = io.BytesIO()
            none = {"exif": b"", "xmp": b""}
            if fmt == "JPEG":
                quality: int | str = 92 if turned else "keep"
                picture.save(out, format="JPEG", quality=quality, **none)
            elif fmt == "PNG":
                picture.save(out, format="PNG", **none)
            else:
                picture.save(out, format="WEBP", quality=90, **none)
    except (OSError, ValueError) as exc:
        raise Unprocessable(f"{label}无法处理，请换一张照片", field="photos") from exc
    return out.getvalue()


def store(photo: CheckedPhoto, uploaded_by_id: int | None, **owner: int) -> Attachment:
    """Write the file (atomically, content-addressed) and return its unsaved Attachment row.

    The file is written before the row commits; if the transaction then fails, the file is an
    unreferenced duplicate-safe blob, never a row pointing at nothing.
    """
    root = Path(current_app.config["UPLOAD_ROOT"])
    relative = Path(photo.sha256[:2]) / f"{photo.sha256}.{photo.extension}"
    target = root / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(photo.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    return Attachment(
        kind=AttachmentKind.PHOTO,
        content_type=photo.content_type,
        size_bytes=len(photo.data),
        sha256=photo.sha256,
        path=str(relative),
        uploaded_by_id=uploaded_by_id,
        **owner,
    )


def open_attachment(attachment: Attachment) -> Path:
    return Path(current_app.config["UPLOAD_ROOT"]) / attachment.path
