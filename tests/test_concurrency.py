"""Writes that race: parallel issuers take gapless unique numbers; a refresh token used twice at
once yields one session; the legal clocks run by two workers at once move each notice once. Run
on SQLite (serialised writers) and PostgreSQL (row locks)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Finding,
    FindingCategory,
    NoticeEvent,
    Notification,
    RectificationNotice,
    Role,
    Severity,
)
from app.services import notices
from tests import factories as f

PARALLEL = 8
LATE_NOTICES = 4


def _parallel(calls):
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_parallel_issuers_get_gapless_unique_numbers(app, client):
    meilan = f.district()
    agency = f.agency(meilan, prefix="美兰市监整")
    centre = f.centre(meilan)
    inspectors = [f.inspector_of(agency) for _ in range(PARALLEL)]
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.III,
        description="地面有积水",
    )
    db.session.add(finding)
    db.session.commit()
    headers = [f.login(client, i.username) for i in inspectors]
    drafts = []
    for h in headers:
        body = {
            "centre_id": centre.id,
            "finding_ids": [finding.id],
            "requirements": "及时清理积水",
            "working_days": 3,
        }
        response = client.post("/api/v1/inspector/notices", json=body, headers=h)
        assert response.status_code == 201
        drafts.append(response.get_json()["id"])

    def issue(notice_id, h):
        return lambda: client.post(f"/api/v1/inspector/notices/{notice_id}/issue", headers=h)

    responses = _parallel([issue(n, h) for n, h in zip(drafts, headers, strict=True)])
    assert [r.status_code for r in responses] == [200] * PARALLEL
    numbers = sorted(r.get_json()["number"] for r in responses)
    year = responses[0].get_json()["issued_at"][:4]
    assert numbers == sorted(f"美兰市监整〔{year}〕{n}号" for n in range(1, PARALLEL + 1))


def test_a_refresh_token_used_twice_at_once_gives_one_session(app, client):
    user = f.user(Role.ADMIN)
    db.session.commit()
    login = client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": f.PASSWORD}
    ).get_json()
    token = login["refresh_token"]

    def refresh():
        return client.post("/api/v1/auth/refresh", json={"refresh_token": token})

    responses = _parallel([refresh, refresh])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401]
    winner = next(r for r in responses if r.status_code == 200).get_json()
    # The loser looked like a stolen copy: the whole session is revoked, the winner's too.
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 401


def test_the_legal_clocks_run_twice_at_once_move_each_late_notice_once(app):
    """Two workers run the overdue and escalation jobs at the same moment: each late notice
    becomes overdue once and escalated once, with one history event and one set of messages
    for each step."""
    app.config["ESCALATION_GRACE_DAYS"] = 3
    meilan = f.district()
    agency = f.agency(meilan, prefix="美兰市监整")
    agency.chat_destinations = {"wecom_robot": "meilan-market"}
    centre = f.centre(meilan)
    issuer = f.inspector_of(agency, wecom_userid="issuer")
    f.inspector_of(agency, wecom_userid="chief", is_supervisor=True)
    operator = f.operator_of(centre)
    operator.wechat_openid = "o-operator"
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.III,
        description="地面有积水",
    )
    db.session.add(finding)
    db.session.commit()
    late = []
    for _ in range(LATE_NOTICES):
        draft = notices.create_draft(
            issuer,
            notices.DraftInput(
                centre_id=centre.id,
                finding_ids=(finding.id,),
                requirements="及时清理积水",
                working_days=3,
            ),
        )
        notices.issue(issuer, draft.id)
        late.append(draft.id)
    for notice in db.session.scalars(
        select(RectificationNotice).where(RectificationNotice.id.in_(late))
    ):
        notice.deadline = notices.local_today() - dt.timedelta(days=10)
    db.session.commit()

    def in_app(job):
        def run():
            with app.app_context():
                return job()

        return run

    overdue = _parallel([in_app(notices.mark_overdue)] * 2)
    escalated = _parallel([in_app(notices.escalate_overdue)] * 2)

    for moved in (overdue, escalated):
        ids = moved[0] + moved[1]
        assert sorted(ids) == sorted(late)  # every notice once, by one worker or the other
    db.session.expire_all()
    statuses = db.session.scalars(
        select(RectificationNotice.status).where(RectificationNotice.id.in_(late))
    ).all()
    assert {s.value for s in statuses} == {"escalated"}
    steps = db.session.execute(
        select(NoticeEvent.notice_id, NoticeEvent.to_status, func.count())
        .where(NoticeEvent.to_status.in_(["overdue", "escalated"]))
        .group_by(NoticeEvent.notice_id, NoticeEvent.to_status)
    ).all()
    assert sorted((n, s.value, c) for n, s, c in steps) == sorted(
        (n, step, 1) for n in late for step in ("overdue", "escalated")
    )
    # overdue: the operator, the issuer and the group; escalated: those, and the supervisor.
    sent = db.session.execute(
        select(Notification.event, func.count())
        .where(Notification.event.in_(["notice.overdue", "notice.escalated"]))
        .group_by(Notification.event)
    ).all()
    assert dict(sent) == {
        "notice.overdue": 3 * LATE_NOTICES,
        "notice.escalated": 4 * LATE_NOTICES,
    }
