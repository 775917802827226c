"""The dashboard's counts: within the inspector's jurisdiction and agency, everything for admins."""

from __future__ import annotations

import datetime as dt
import uuid

from app.extensions import db
from app.models import CameraStatus, CentreStatus, Finding, FindingCategory, Role, Severity
from app.services import concerns, notices
from tests import factories as f


def _finding(centre, text="后厨地面湿滑"):
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.III,
        description=text,
    )
    db.session.add(finding)
    db.session.flush()
    return finding


def test_an_inspector_sees_counts_of_their_jurisdiction_only(app, client):
    meilan, qiongshan = f.district(), f.district("琼山区")
    agency = f.agency(meilan)
    live = f.centre(meilan, status=CentreStatus.LIVE)
    f.centre(meilan, status=CentreStatus.SUSPENDED)
    elsewhere = f.centre(qiongshan, status=CentreStatus.LIVE)
    f.camera(live).status = CameraStatus.ONLINE
    f.camera(elsewhere).status = CameraStatus.ONLINE
    _finding(elsewhere, "别处的问题")
    finding = _finding(live)
    inspector = f.inspector_of(agency)
    db.session.commit()
    draft = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=live.id, finding_ids=(finding.id,), requirements="整改", working_days=3
        ),
    )
    notices.issue(inspector, draft.id)

    body = client.get("/api/v1/dashboard", headers=f.login(client, inspector.username)).get_json()

    assert body["centres"] == {"live": 1, "suspended": 1}
    assert body["cameras"] == {"online": 1}
    assert body["notices"] == {"issued": 1}
    assert (body["notices_open"], body["notices_overdue"], body["notices_awaiting_review"]) == (
        1,
        0,
        0,
    )
    assert [x["description"] for x in body["recent_findings"]] == ["后厨地面湿滑"]


def test_parents_and_operators_have_no_dashboard(app, client):
    centre = f.centre(f.district())
    parent = f.parent_of(centre)
    operator = f.operator_of(centre)
    admin = f.user(Role.ADMIN)
    db.session.commit()
    for user in (parent, operator):
        response = client.get("/api/v1/dashboard", headers=f.login(client, user.username))
        assert response.status_code == 403
    response = client.get("/api/v1/dashboard", headers=f.login(client, admin.username))
    assert response.status_code == 200
    assert response.get_json()["centres"] == {"live": 1}


def _concern(parent, centre, text, days_ago=0):
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    data = concerns.ConcernInput(centre_id=centre.id, text=text, client_key=uuid.uuid4().hex)
    return concerns.submit(parent, data, [], now=now).view


def test_open_concerns_are_listed_on_their_running_clock_overdue_first(app, client):
    meilan, qiongshan = f.district(), f.district("琼山区")
    agency = f.agency(meilan)
    centre = f.centre(meilan, "阳光小树苗托管中心")
    elsewhere = f.centre(qiongshan)
    parent = f.parent_of(centre, elsewhere)
    inspector = f.inspector_of(agency)
    db.session.commit()
    late = _concern(parent, centre, "储存间米面放在地上", days_ago=42)
    fresh = _concern(parent, centre, "厨师没有戴口罩")
    accepted = _concern(parent, centre, "清洗间抹布发黑")
    concerns.accept(inspector, accepted["id"])
    done = _concern(parent, centre, "餐具没有消毒")
    concerns.accept(inspector, done["id"])
    concerns.resolve(inspector, done["id"], "已责令整改")
    _concern(parent, elsewhere, "别处的反映")

    body = client.get("/api/v1/dashboard", headers=f.login(client, inspector.username)).get_json()

    assert (body["concerns_open"], body["concerns_overdue"]) == (3, 1)
    shown = [
        (c["id"], c["clock_label"], c["due"], c["overdue"]) for c in body["concerns_on_the_clock"]
    ]
    assert shown == [
        (late["id"], "受理期限", late["decide_by"].isoformat(), True),
        (fresh["id"], "受理期限", fresh["decide_by"].isoformat(), False),
        (accepted["id"], "办结期限", accepted["resolve_by"].isoformat(), False),
    ]
    assert body["concerns_on_the_clock"][0]["centre_name"] == "阳光小树苗托管中心"
    assert "reporter" not in body["concerns_on_the_clock"][0]
