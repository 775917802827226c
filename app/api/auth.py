"""Sign-in for staff (username + password) and parents (mini-program `wx.login` code)."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.schemas import LoginIn, RefreshIn, StrictSchema, TokensOut, UserOut, WxaLoginIn
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


class WechatAuthorizeArgs(StrictSchema):
    state = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9]{1,64}$", error="state 须为 1 到 64 位字母或数字"),
    )


class WechatAuthorizeOut(Schema):
    url = fields.String(required=True)


@blp.get("/wechat/authorize")
@blp.arguments(WechatAuthorizeArgs, location="query")
@blp.response(200, WechatAuthorizeOut)
@blp.alt_response(502, response="UpstreamError")
def wechat_authorize(args: dict):
    """Where the H5 app inside WeChat sends the browser to sign a parent in (网页授权,
    snsapi_base); WeChat comes back to the app's address with `code` and this `state`."""
    return {"url": auth_service.wechat_authorize_url(args["state"])}


@blp.post("/wechat")
@blp.arguments(WxaLoginIn)
@blp.response(200, TokensOut)
@blp.alt_response(401, response="Unauthenticated")
@blp.alt_response(403, response="Forbidden")
@blp.alt_response(502, response="UpstreamError")
def wechat_login(body: dict):
    """The code WeChat's web authorisation returned → tokens for that parent (created on
    first sign-in, the same account as in the official account's chat)."""
    return _tokens(auth_service.login_wechat_web(body["code"]))


@blp.get("/me")
@auth_required()
@blp.response(200, UserOut)
def me():
    """The signed-in user."""
    return current_user()
