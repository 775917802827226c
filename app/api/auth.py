"""Sign-in for staff (username + password) and parents (mini-program `wx.login` code)."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from app.api.schemas import LoginIn, RefreshIn, TokensOut, UserOut, WxaLoginIn
from app.api.security import auth_required, current_user
from app.services import auth as auth_service

blp = Blueprint("auth", __name__, description="登录与令牌")


def _tokens(pair: auth_service.TokenPair) -> dict:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "user": pair.user,
    }


@blp.post("/login")
@blp.arguments(LoginIn)
@blp.response(200, TokensOut)
@blp.alt_response(401, response="Unauthenticated")
@blp.alt_response(429, response="TooManyRequests")
def login(body: dict):
    """Staff login with username and password."""
    return _tokens(auth_service.login(body["username"], body["password"], request.remote_addr))


@blp.post("/refresh")
@blp.arguments(RefreshIn)
@blp.response(200, TokensOut)
@blp.alt_response(401, response="Unauthenticated")
def refresh(body: dict):
    """Exchange a refresh token for new tokens (the old refresh token stops working)."""
    return _tokens(auth_service.refresh(body["refresh_token"]))


@blp.post("/logout")
@blp.arguments(RefreshIn)
@blp.response(204)
def logout(body: dict):
    """Revoke a refresh token and the session it belongs to."""
    auth_service.logout(body["refresh_token"])


@blp.post("/wxa")
@blp.arguments(WxaLoginIn)
@blp.response(200, TokensOut)
@blp.alt_response(401, response="Unauthenticated")
@blp.alt_response(502, response="UpstreamError")
def wxa_login(body: dict):
    """Mini-program login: a `wx.login` code is exchanged through code2session."""
    return _tokens(auth_service.login_miniprogram(body["code"]))


@blp.get("/me")
@auth_required()
@blp.response(200, UserOut)
def me():
    """The signed-in user."""
    return current_user()
