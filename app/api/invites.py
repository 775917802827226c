"""Invite codes (邀请码) parents bind with: issued, listed and revoked by the centre's operator
or an admin."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.schemas_parents import InviteCodeIn, InviteCodeOut
from app.api.security import auth_required, current_user
from app.models import Role
from app.services import parents

blp = Blueprint("invites", __name__, description="家长邀请码（经营者、管理员）")

MANAGERS = (Role.OPERATOR, Role.ADMIN)


@blp.post("/centres/<int:centre_id>/invite-codes")
@auth_required(*MANAGERS)
@blp.arguments(InviteCodeIn, required=False)
@blp.response(201, InviteCodeOut)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(422, response="Unprocessable")
def issue_code(body: dict, centre_id: int):
    """Issue a code (and its QR payload) with an expiry and a use limit."""
    return parents.issue_code(current_user(), centre_id, body["max_uses"], body["expires_in_days"])


@blp.get("/centres/<int:centre_id>/invite-codes")
@auth_required(*MANAGERS)
@blp.response(200, InviteCodeOut(many=True))
@blp.alt_response(404, response="NotFound")
def list_codes(centre_id: int):
    """The centre's codes, newest first, with their state (active, expired, used up, revoked)."""
    return parents.list_codes(current_user(), centre_id)


@blp.post("/invite-codes/<int:code_id>/revoke")
@auth_required(*MANAGERS)
@blp.response(200, InviteCodeOut)
@blp.alt_response(404, response="NotFound")
def revoke_code(code_id: int):
    """Stop a code working; parents already linked stay linked."""
    return parents.revoke_code(current_user(), code_id)
