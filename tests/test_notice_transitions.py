"""The notice state machine through the API, exhaustively: every action from every state the
lifecycle (DESIGN.md) does not allow it from is refused with 409 and the current state, and
every action by a role that may not take it is refused with 403 (reason `role`).

The lifecycle is written out here rather than read from app/services/notices.py, so the test
checks the code against the design and not against itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Finding,
    FindingCategory,
    NoticeEvent,
    RectificationNotice,
    ReviewMode,
    Role,
    Severity,
    User,
)
from app.services import notices
from app.services.auth import issue_access_token
from tests import factories as f

STATES = (
    "draft",
    "issued",
    "acknowledged",
    "responded",
    "returned",
    "verified",
    "overdue",
    "escalated",
    "withdrawn",
)
LABELS = {s.value: label for s, label in notices.STATUS_LABELS.items()}


@dataclass(frozen=True)
class Action:
    actor: Role
    allowed_from: frozenset[str]
    # (url for the notice id, request keyword arguments)
    request: Callable[[int], tuple[str, dict]]


def _inspector_json(path: str, body: dict | None = None) -> Callable[[int], tuple[str, dict]]:
    return lambda nid: (f"/api/v1/inspector/notices/{nid}/{path}", {"json": body})


ACTIONS = {
    "issue": Action(Role.INSPECTOR, frozenset({"draft"}), _inspector_json("issue")),
    "withdraw": Action(
        Role.INSPECTOR,
        frozenset({"draft", "issued"}),
        _inspector_json("withdraw", {"reason": "误发"}),
    ),
    "acknowledge": Action(
        Role.OPERATOR,
        frozenset({"issued"}),
        lambda nid: (f"/api/v1/notices/{nid}/acknowledge", {}),
    ),
    "respond": Action(
        Role.OPERATOR,
        # Overdue and escalated notices are still answerable.
        frozenset({"issued", "acknowledged", "returned", "overdue", "escalated"}),
        lambda nid: (
            f"/api/v1/notices/{nid}/responses",
            {"data": {"text": "已整改"}, "content_type": "multipart/form-data"},
        ),
    ),
    "verify": Action(
        Role.INSPECTOR, frozenset({"responded"}), _inspector_json("verify", {"mode": "on_site"})
    ),
    "return": Action(
        Role.INSPECTOR,
        frozenset({"responded"}),
        _inspector_json("return", {"mode": "on_site", "reason": "不合格"}),
    ),
    "follow_up": Action(
        Role.INSPECTOR,
        frozenset(STATES) - {"draft", "withdrawn"},
        _inspector_json(
            "follow-ups",
            {
                "kind": "phone",
                "happened_at": "2026-11-28T10:30:00+08:00",
                "contact": "李经营",
                "outcome": "已电话督促",
            },
        ),
    ),
}

REFUSED = [
    pytest.param(action, state, id=f"{action}-from-{state}")
    for action, spec in ACTIONS.items()
    for state in STATES
    if state not in spec.allowed_from
]
WRONG_ROLES = [
    pytest.param(action, role, id=f"{action}-by-{role.value}")
    for action, spec in ACTIONS.items()
    for role in Role
    if role is not spec.actor
]


@pytest.fixture
def world(app, client):
    meilan = f.district("美兰区")
    market = f.agency(meilan, prefix="美兰市监整")
    centre = f.centre(meilan, "阳光小树苗托管中心")
    people = {
        Role.INSPECTOR: f.inspector_of(market),
        Role.OPERATOR: f.operator_of(centre),
        Role.PARENT: f.parent_of(centre),
        Role.TECHNICIAN: f.technician_for(centre),
        Role.ADMIN: f.user(Role.ADMIN),
    }
    finding = Finding(
        centre_id=centre.id,
        category=FindingCategory.HYGIENE,
        severity=Severity.II,
        description="操作间垃圾桶未加盖",
    )
    db.session.add(finding)
    db.session.commit()
    app.config["ESCALATION_GRACE_DAYS"] = 3
    return {"centre": centre, "finding": finding, "people": people}


def headers(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_access_token(user)}"}


def _backdate(notice_id: int, days: int) -> None:
    notice = db.session.get(RectificationNotice, notice_id)
    notice.deadline = notices.local_today() - dt.timedelta(days=days)
    db.session.commit()


def notice_in(world, state: str) -> int:
    """A notice brought to `state` the way it gets there: through the services."""
    inspector = world["people"][Role.INSPECTOR]
    operator = world["people"][Role.OPERATOR]
    notice = notices.create_draft(
        inspector,
        notices.DraftInput(
            centre_id=world["centre"].id,
            finding_ids=(world["finding"].id,),
            requirements="立即加盖",
            working_days=5,
        ),
    )
    nid = notice.id
    if state == "draft":
        return nid
    notices.issue(inspector, nid)
    steps: dict[str, Callable[[], object]] = {
        "acknowledged": lambda: notices.acknowledge(operator, nid),
        "responded": lambda: notices.respond(operator, nid, "已整改", []),
        "withdrawn": lambda: notices.withdraw(inspector, nid, "误发"),
    }
    if state in steps:
        steps[state]()
    elif state in ("returned", "verified"):
        notices.respond(operator, nid, "已整改", [])
        on_site = notices.ReviewInput(ReviewMode.ON_SITE)
        if state == "returned":
            notices.return_for_rework(inspector, nid, on_site, "不合格")
        else:
            notices.verify(inspector, nid, on_site)
    elif state in ("overdue", "escalated"):
        _backdate(nid, 5)
        assert nid in notices.mark_overdue()
        if state == "escalated":
            assert nid in notices.escalate_overdue()
    assert db.session.get(RectificationNotice, nid).status.value == state
    return nid


def history_length(notice_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(NoticeEvent).where(NoticeEvent.notice_id == notice_id)
    )


def status_of(client, world, notice_id: int) -> str:
    detail = client.get(
        f"/api/v1/notices/{notice_id}", headers=headers(world["people"][Role.INSPECTOR])
    )
    return detail.get_json()["status"]


@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_an_action_from_a_state_that_does_not_allow_it_is_409(client, world, action, state):
    spec = ACTIONS[action]
    nid = notice_in(world, state)
    events = history_length(nid)
    url, kwargs = spec.request(nid)
    response = client.post(url, headers=headers(world["people"][spec.actor]), **kwargs)
    body = response.get_json()
    if spec.actor is Role.OPERATOR and state == "draft":
        # A draft does not exist for the operator: acting on it answers as reading it does,
        # rather than a 409 that would reveal it.
        assert response.status_code == 404, body
        assert body["error"] == "not_found"
    else:
        assert response.status_code == 409, body
        assert body["error"] == "conflict"
        assert body["current_status"] == state
        assert LABELS[state] in body["message"]
    assert status_of(client, world, nid) == state
    assert history_length(nid) == events


def test_every_lifecycle_step_the_design_allows_is_possible(client, world):
    """The other half of the table: each action succeeds from each state it is allowed from,
    so the refusals above are not just a notice that refuses everything."""
    for action, spec in ACTIONS.items():
        for state in sorted(spec.allowed_from):
            nid = notice_in(world, state)
            url, kwargs = spec.request(nid)
            response = client.post(url, headers=headers(world["people"][spec.actor]), **kwargs)
            assert response.status_code in (200, 201), (action, state, response.get_json())


@pytest.mark.parametrize(("action", "role"), WRONG_ROLES)
def test_an_action_by_a_role_that_may_not_take_it_is_403(client, world, action, role):
    spec = ACTIONS[action]
    state = min(spec.allowed_from)  # a state the action is allowed from: only the role is wrong
    nid = notice_in(world, state)
    events = history_length(nid)
    url, kwargs = spec.request(nid)
    response = client.post(url, headers=headers(world["people"][role]), **kwargs)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"] == "forbidden"
    assert response.get_json()["reason"] == "role"
    assert status_of(client, world, nid) == state
    assert history_length(nid) == events


def test_the_service_table_matches_the_design(world):
    """The state-changing actions of the service agree with the lifecycle written above."""
    for action, spec in ACTIONS.items():
        if action == "follow_up":
            continue
        sources, _target, roles = notices.TRANSITIONS[action]
        assert {s.value for s in sources} == spec.allowed_from, action
        assert roles == frozenset({spec.actor}), action
