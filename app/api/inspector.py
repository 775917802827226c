"""What inspectors (监管人员) do: patrols, findings, notices, reviews and follow-ups."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from app.api.schemas import (
    AreaCheckIn,
    AreaCheckOut,
    FindingIn,
    FindingOut,
    FollowUpIn,
    FollowUpOut,
    NoticeDetailOut,
    NoticeDraftIn,
    PatrolEndIn,
    PatrolOut,
    PatrolStartIn,
    ReasonIn,
    ReviewIn,
)
from app.api.security import auth_required, current_user
from app.models import Role
from app.services import notices, patrols, reports

blp = Blueprint("inspector", __name__, description="监管人员：巡查、整改通知、复查、跟进")

INSPECTOR = (Role.INSPECTOR,)


@blp.post("/patrols")
@auth_required(*INSPECTOR)
@blp.arguments(PatrolStartIn)
@blp.response(201, PatrolOut)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(409, response="Conflict")
def start_patrol(body: dict):
    """Start a remote or on-site patrol of a centre."""
    return patrols.start_patrol(current_user(), body["centre_id"], body["mode"])


@blp.get("/patrols/<int:patrol_id>")
@auth_required(*INSPECTOR, Role.ADMIN)
@blp.response(200, PatrolOut)
def get_patrol(patrol_id: int):
    return patrols.get_patrol(current_user(), patrol_id)


@blp.put("/patrols/<int:patrol_id>/areas/<int:area_id>")
@auth_required(*INSPECTOR)
@blp.arguments(AreaCheckIn)
@blp.response(200, AreaCheckOut)
@blp.alt_response(409, response="Conflict")
def check_area(body: dict, patrol_id: int, area_id: int):
    """Record what was seen in one room: ok, or a finding (with an optional snapshot)."""
    return patrols.check_area(
        current_user(), patrol_id, area_id, body["result"], body["note"], body["snapshot_id"]
    )


@blp.post("/patrols/<int:patrol_id>/findings")
@auth_required(*INSPECTOR)
@blp.arguments(FindingIn)
@blp.response(201, FindingOut)
@blp.alt_response(409, response="Conflict")
def record_finding(body: dict, patrol_id: int):
    data = patrols.FindingInput(
        category=body["category"],
        severity=body["severity"],
        description=body["description"],
        area_id=body["area_id"],
        snapshot_ids=tuple(body["snapshot_ids"]),
    )
    return patrols.record_finding(current_user(), patrol_id, data)


@blp.post("/patrols/<int:patrol_id>/end")
@auth_required(*INSPECTOR)
@blp.arguments(PatrolEndIn, required=False)
@blp.response(200, PatrolOut)
@blp.alt_response(409, response="Conflict")
def end_patrol(body: dict, patrol_id: int):
    return patrols.end_patrol(current_user(), patrol_id, body["summary"])


@blp.get("/patrols/<int:patrol_id>/record.pdf")
@auth_required(*INSPECTOR, Role.ADMIN)
@blp.response(200, description="巡查记录 PDF", content_type="application/pdf")
def patrol_pdf(patrol_id: int):
    patrol = patrols.get_patrol(current_user(), patrol_id)
    return _pdf(reports.patrol_record_pdf(patrol), f"patrol-{patrol.id}.pdf")


@blp.post("/notices")
@auth_required(*INSPECTOR)
@blp.arguments(NoticeDraftIn)
@blp.response(201, NoticeDetailOut)
@blp.alt_response(404, response="NotFound")
def create_notice(body: dict):
    """Draft a rectification notice from findings (deadline: a date or N working days)."""
    data = notices.DraftInput(
        centre_id=body["centre_id"],
        finding_ids=tuple(body["finding_ids"]),
        requirements=body["requirements"],
        legal_basis=body["legal_basis"],
        deadline=body["deadline"],
        working_days=body["working_days"],
    )
    return notices.create_draft(current_user(), data)


@blp.post("/notices/<int:notice_id>/issue")
@auth_required(*INSPECTOR)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(409, response="Conflict")
def issue_notice(notice_id: int):
    """Issue a draft: it is numbered (e.g. 美兰市监整〔2026〕17号) and the operator is told."""
    return notices.issue(current_user(), notice_id)


@blp.post("/notices/<int:notice_id>/withdraw")
@auth_required(*INSPECTOR)
@blp.arguments(ReasonIn)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(409, response="Conflict")
def withdraw_notice(body: dict, notice_id: int):
    return notices.withdraw(current_user(), notice_id, body["reason"])


@blp.post("/notices/<int:notice_id>/verify")
@auth_required(*INSPECTOR)
@blp.arguments(ReviewIn)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(409, response="Conflict")
def verify_notice(body: dict, notice_id: int):
    """Verify the rectification (closes the notice), on site or by live video."""
    review = notices.ReviewInput(body["mode"], body["note"], body["snapshot_id"])
    return notices.verify(current_user(), notice_id, review)


@blp.post("/notices/<int:notice_id>/return")
@auth_required(*INSPECTOR)
@blp.arguments(ReviewIn)
@blp.response(200, NoticeDetailOut)
@blp.alt_response(409, response="Conflict")
def return_notice(body: dict, notice_id: int):
    """Return the answer for more work, with the reason the operator will see."""
    review = notices.ReviewInput(body["mode"], body["note"], body["snapshot_id"])
    return notices.return_for_rework(current_user(), notice_id, review, body["reason"])


@blp.post("/notices/<int:notice_id>/follow-ups")
@auth_required(*INSPECTOR)
@blp.arguments(FollowUpIn)
@blp.response(201, FollowUpOut)
@blp.alt_response(409, response="Conflict")
def add_follow_up(body: dict, notice_id: int):
    """Log a phone call, on-site visit or message about the notice."""
    data = notices.FollowUpInput(
        body["kind"], body["happened_at"], body["contact"], body["outcome"]
    )
    return notices.add_follow_up(current_user(), notice_id, data)


def _pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@blp.get("/centres/<int:centre_id>/patrols")
@auth_required(*INSPECTOR, Role.ADMIN)
@blp.response(200, PatrolOut(many=True))
def list_patrols(centre_id: int):
    """The centre's patrol log (newest first), exportable as JSON."""
    return patrols.list_patrols(current_user(), centre_id)
