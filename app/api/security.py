"""Bearer-token authentication and role checks for the JSON API — one helper used everywhere."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request
from flask_smorest import Blueprint

from app.errors import Unauthenticated
from app.models import Role, User
from app.services.auth import authenticate_access_token
from app.services.scope import require_role

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY = [{"bearerAuth": []}]


def current_user() -> User:
    user = g.get("current_user")
    if user is None:
        raise Unauthenticated()
    return user


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("请先登录", reason="missing_token")
    return token.strip()


def auth_required(*roles: Role) -> Callable[[F], F]:
    """Require a valid access token; with roles, require one of them (403 otherwise)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = authenticate_access_token(_bearer_token())
            if roles:
                require_role(user, *roles)
            g.current_user = user
            return view(*args, **kwargs)

        documented = Blueprint.doc(
            security=BEARER_SECURITY,
            responses={
                "401": {"$ref": "#/components/responses/Unauthenticated"},
                "403": {"$ref": "#/components/responses/Forbidden"},
            },
        )(wrapper)
        return cast(F, documented)

    return decorator
