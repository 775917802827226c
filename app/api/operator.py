"""What operators (经营者) do for their own centre."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.schemas import CentreOut, MealWindowsIn
from app.api.security import auth_required, current_user
from app.models import Role
from app.services import centres as centre_service

blp = Blueprint("operator", __name__, description="经营者")


@blp.put("/centres/<int:centre_id>/meal-windows")
@auth_required(Role.OPERATOR, Role.ADMIN)
@blp.arguments(MealWindowsIn)
@blp.response(200, CentreOut)
@blp.alt_response(404, response="NotFound")
@blp.alt_response(422, response="Unprocessable")
def set_meal_windows(body: dict, centre_id: int):
    """Replace the centre's meal windows (when parents may watch the kitchen)."""
    windows = [centre_service.MealWindowInput(**w) for w in body["windows"]]
    return centre_service.set_meal_windows(current_user(), centre_id, windows)
