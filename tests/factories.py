"""Test data builders. They write rows directly (test set-up, not a user action) and flush."""

from __future__ import annotations

import hashlib
import io
import itertools
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from flask import current_app
from PIL import Image

from app.extensions import db
from app.models import (
    Agency,
    AgencyKind,
    AreaKind,
    Camera,
    Centre,
    CentreStatus,
    District,
    KitchenArea,
    MealWindow,
    ParentLink,
    Role,
    Snapshot,
    SnapshotReason,
    TechnicianAssignment,
    User,
)
from app.secrets import encrypt_secret, redact_url
from app.services.auth import hash_password

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)

AREA_NAMES = {
    AreaKind.PREP: "备餐间",
    AreaKind.STORAGE: "储存间",
    AreaKind.COOKING: "操作间",
    AreaKind.WASHING: "清洗间",
}

# One hash for every test user: argon2 is deliberately slow.
_PASSWORD_HASH: str | None = None


def _password_hash() -> str:
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = hash_password(PASSWORD)
    return _PASSWORD_HASH


def district(name: str = "美兰区", parent: District | None = None) -> District:
    row = District(code=f"46{next(_seq):04d}", name=name, parent_id=parent.id if parent else None)
    db.session.add(row)
    db.session.flush()
    return row


def agency(
    in_district: District,
    kind: AgencyKind = AgencyKind.MARKET_REGULATION,
    prefix: str = "美兰市监整",
) -> Agency:
    suffix = "市场监督管理局" if kind is AgencyKind.MARKET_REGULATION else "教育局"
    row = Agency(
        name=f"{in_district.name}{suffix}",
        kind=kind,
        district_id=in_district.id,
        notice_prefix=prefix,
    )
    db.session.add(row)
    db.session.flush()
    return row


def centre(
    in_district: District,
    name: str | None = None,
    status: CentreStatus = CentreStatus.LIVE,
    with_rooms: bool = True,
) -> Centre:
    row = Centre(
        name=name or f"测试托管中心{next(_seq)}", district_id=in_district.id, status=status
    )
    db.session.add(row)
    db.session.flush()
    if with_rooms:
        for kind, area_name in AREA_NAMES.items():
            db.session.add(
                KitchenArea(
                    centre_id=row.id,
                    kind=kind,
                    name=area_name,
                    shown_to_parents=kind is not AreaKind.STORAGE,
                )
            )
        db.session.add(
            MealWindow(centre_id=row.id, label="午餐", starts_at=time(11, 30), ends_at=time(13, 0))
        )
        db.session.flush()
    return row


def camera(
    of_centre: Centre, area_kind: AreaKind = AreaKind.COOKING, url: str | None = None
) -> Camera:
    area = next(a for a in of_centre.areas if a.kind is area_kind)
    url = url or f"rtsp://admin:s3cret-pass@192.0.2.10:554/stream{next(_seq)}"
    row = Camera(
        centre_id=of_centre.id,
        area_id=area.id,
        name=f"{area.name}摄像头",
        rtsp_url_encrypted=encrypt_secret(url),
        rtsp_url_redacted=redact_url(url),
    )
    db.session.add(row)
    db.session.flush()
    return row


def snapshot(
    of_camera: Camera,
    color: str = "white",
    *,
    reason: SnapshotReason = SnapshotReason.PATROL,
    days_old: int = 0,
) -> Snapshot:
    """A snapshot the camera took: a real JPEG under the instance folder, as the media layer
    stores one (app/services/snapshots.py), so documents can embed it."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), color).save(buffer, "JPEG")
    data = buffer.getvalue()
    relative = Path("snapshots") / str(of_camera.id) / f"test-{next(_seq)}.jpg"
    path = Path(current_app.config["INSTANCE_PATH"]) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    row = Snapshot(
        camera_id=of_camera.id,
        path=str(relative),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=320,
        height=240,
        reason=reason,
        taken_at=datetime.now(UTC) - timedelta(days=days_old),
    )
    db.session.add(row)
    db.session.flush()
    return row


def user(role: Role, **fields) -> User:
    n = next(_seq)
    fields.setdefault("username", f"{role.value}{n}")
    fields.setdefault("display_name", f"{role.value} {n}")
    fields.setdefault("password_hash", _password_hash())
    row = User(role=role, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def parent_of(*centres: Centre, **fields) -> User:
    fields.setdefault("wechat_openid", f"openid-{next(_seq)}")
    row = user(Role.PARENT, **fields)
    for c in centres:
        db.session.add(ParentLink(parent_id=row.id, centre_id=c.id))
    db.session.flush()
    return row


def operator_of(of_centre: Centre) -> User:
    return user(Role.OPERATOR, centre_id=of_centre.id)


def inspector_of(of_agency: Agency, **fields) -> User:
    return user(Role.INSPECTOR, agency_id=of_agency.id, **fields)


def technician_for(*centres: Centre) -> User:
    row = user(Role.TECHNICIAN)
    for c in centres:
        db.session.add(TechnicianAssignment(technician_id=row.id, centre_id=c.id))
    db.session.flush()
    return row


def login(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in through the API and return the Authorization header."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}
