"""Snapshot retention: old snapshots go, evidence stays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.models import AreaKind, Finding, FindingCategory, Severity, Snapshot, SnapshotReason
from app.services import snapshots
from tests import factories as f


def _snapshot(app, camera, days_old: int, name: str) -> Snapshot:
    relative = Path("snapshots") / str(camera.id) / f"{name}.jpg"
    path = Path(app.config["INSTANCE_PATH"]) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 jpeg " + name.encode())
    row = Snapshot(
        camera_id=camera.id,
        path=str(relative),
        sha256=name.ljust(64, "0"),
        size_bytes=10,
        reason=SnapshotReason.SCHEDULE,
        taken_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_old),
    )
    db.session.add(row)
    db.session.flush()
    return row


def test_retention_deletes_old_snapshots_and_keeps_evidence_and_recent_ones(app):
    app.config["SNAPSHOT_RETENTION_DAYS"] = 30
    centre = f.centre(f.district())
    camera = f.camera(centre, AreaKind.COOKING)
    old = _snapshot(app, camera, 40, "old")
    evidence = _snapshot(app, camera, 40, "evidence")
    recent = _snapshot(app, camera, 2, "recent")
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description="地面湿滑",
    )
    finding.snapshots = [evidence]
    db.session.add(finding)
    db.session.commit()
    old_path, evidence_path = snapshots.snapshot_path(old), snapshots.snapshot_path(evidence)

    assert snapshots.purge_expired() == 1
    remaining = set(db.session.scalars(select(Snapshot.sha256)))
    assert remaining == {evidence.sha256, recent.sha256}
    assert not old_path.exists()
    assert evidence_path.exists()
    assert snapshots.purge_expired() == 0
