"""Writes that race: parallel issuers take gapless unique numbers; a refresh token used twice at
once yields one session. Run on SQLite (serialised writers) and PostgreSQL (row locks)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from app.extensions import db
from app.models import Finding, FindingCategory, Role, Severity
from tests import factories as f

PARALLEL = 8


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
