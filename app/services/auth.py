"""Staff and parent authentication: passwords, JWT access tokens, rotating refresh tokens and
mini-program login through WeChat's code2session."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from requests import RequestException
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException

from app.errors import BadInput, DomainError, Forbidden, RateLimited, Unauthenticated, UpstreamError
from app.extensions import db
from app.models import RefreshToken, Role, User, utcnow
from app.services import audit
from app.services.base import transaction
from app.services.parents import parent_for_wechat
from app.wechat_api import WebOAuth, code_to_session, wechat_client

_hasher = PasswordHasher()
JWT_ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        # Spend the same time as a real check so unknown users are not revealed by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _hash_refresh(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(user: User) -> str:
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role.value,
        "iss": current_app.config["JWT_ISSUER"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=current_app.config["ACCESS_TOKEN_TTL_S"]),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=JWT_ALGORITHM)


def _new_refresh_token(user: User, family: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=_hash_refresh(token),
            family=family or uuid.uuid4().hex,
            expires_at=utcnow() + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_S"]),
        )
    )
    return token


def _pair(user: User, family: str | None = None) -> TokenPair:
    return TokenPair(
        access_token=issue_access_token(user),
        refresh_token=_new_refresh_token(user, family),
        expires_in=current_app.config["ACCESS_TOKEN_TTL_S"],
        user=user,
    )


def authenticate_access_token(token: str) -> User:
    """The active user an access token belongs to, or `Unauthenticated`."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[JWT_ALGORITHM],
            issuer=current_app.config["JWT_ISSUER"],
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("登录已过期，请重新登录", reason="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("登录凭证无效，请重新登录", reason="token_invalid") from exc
    if claims.get("typ") != "access":
        raise Unauthenticated("登录凭证无效，请重新登录", reason="token_invalid")
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthenticated("登录凭证无效，请重新登录", reason="token_invalid") from exc
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("账号不存在或已停用", reason="user_inactive")
    return user


def login(username: str, password: str, ip: str | None = None) -> TokenPair:
    """Staff login (and the demo parent in demo mode). Locks an account after repeated failures."""
    with transaction():
        user = db.session.scalar(select(User).where(User.username == username))
        now = utcnow()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            audit.record("login.locked", actor_id=user.id, ip=ip)
            failure: DomainError = RateLimited(
                "登录失败次数过多，请稍后再试",
                # Seconds, like every other 429 of the API.
                retry_after=max(1, math.ceil((user.locked_until - now).total_seconds())),
            )
        elif not _password_matches(user, password) or user is None or not user.is_active:
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
                    user.locked_until = now + timedelta(
                        seconds=current_app.config["LOGIN_LOCKOUT_S"]
                    )
                    user.failed_logins = 0
            audit.record(
                "login.failed", actor_id=user.id if user else None, ip=ip, username=username[:64]
            )
            failure = Unauthenticated("用户名或密码错误", reason="bad_credentials")
        elif user.role is Role.PARENT and not current_app.config["DEMO_MODE"]:
            audit.record("login.refused_parent_password", actor_id=user.id, ip=ip)
            failure = Forbidden("家长请通过微信登录", reason="parent_password_login")
        else:
            user.failed_logins = 0
            user.locked_until = None
            audit.record("login", actor_id=user.id, ip=ip)
            return _pair(user)
    # The failure counters and the audit row above are committed; only then is the error raised.
    raise failure


def refresh(token: str) -> TokenPair:
    """Rotate a refresh token. Presenting one already used (or revoked) revokes its family:
    somebody else holds a copy."""
    with transaction():
        row = db.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(token))
        )
        now = utcnow()
        if row is None:
            failure: Exception = Unauthenticated("登录凭证无效，请重新登录", reason="token_invalid")
        elif row.revoked_at is not None or row.used_at is not None:
            db.session.execute(
                update(RefreshToken)
                .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            audit.record("refresh.reused", actor_id=row.user_id, family=row.family)
            failure = Unauthenticated("登录凭证已失效，请重新登录", reason="token_revoked")
        elif row.expires_at <= now:
            failure = Unauthenticated("登录已过期，请重新登录", reason="token_expired")
        elif not row.user.is_active:
            failure = Unauthenticated("账号不存在或已停用", reason="user_inactive")
        else:
            # Claim the token with a conditional UPDATE: of two concurrent refreshes with the
            # same token exactly one wins; the other is treated as reuse.
            claimed = db.session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.id == row.id,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(used_at=now)
            ).rowcount
            if claimed == 1:
                return _pair(row.user, family=row.family)
            db.session.execute(
                update(RefreshToken)
                .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            failure = Unauthenticated("登录凭证已失效，请重新登录", reason="token_revoked")
    raise failure


def logout(token: str) -> None:
    """Revoke the refresh token's whole family (this device's session)."""
    with transaction():
        row = db.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(token))
        )
        if row is None:
            return
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        audit.record("logout", actor_id=row.user_id)


# WeChat errcodes of code2session and what the user should be told. Factories, not instances:
# raising one shared exception object grows its traceback on every raise and shares it between
# threads.
_WXA_ERRORS: dict[int, Callable[[], DomainError]] = {
    40029: lambda: Unauthenticated("微信登录凭证无效，请重新打开小程序", reason="wxa_invalid_code"),
    40163: lambda: Unauthenticated("微信登录凭证已使用，请重新打开小程序", reason="wxa_code_used"),
    45011: lambda: RateLimited("微信登录过于频繁，请稍后再试"),
    40226: lambda: Forbidden("该微信账号存在风险，无法登录", reason="wxa_high_risk_user"),
}


def _code_to_session(code: str) -> dict[str, Any]:
    cfg = current_app.config
    if not cfg.get("WXA_APP_ID") or not cfg.get("WXA_APP_SECRET"):
        raise UpstreamError("小程序登录未配置", reason="wxa_not_configured")
    client = current_app.extensions.get("bk_wxa_client")
    if client is None:
        client = wechat_client(
            cfg["WXA_APP_ID"],
            cfg["WXA_APP_SECRET"],
            cfg["WECHAT_API_BASE"],
            cfg["WECHAT_HTTP_TIMEOUT_S"],
        )
        current_app.extensions["bk_wxa_client"] = client
    try:
        return code_to_session(client, code)
    except WeChatClientException as exc:
        errcode = exc.errcode
        if errcode in _WXA_ERRORS:
            raise _WXA_ERRORS[errcode]() from exc
        if errcode == -1:
            raise UpstreamError("微信系统繁忙，请稍后再试", reason="wechat_busy") from exc
        current_app.logger.warning("code2session failed: errcode=%s", errcode)
        raise UpstreamError("微信登录失败，请稍后再试", reason="wechat_error") from exc
    except RequestException as exc:
        current_app.logger.warning("code2session unreachable: %s", type(exc).__name__)
        raise UpstreamError("无法连接微信服务器，请稍后再试", reason="wechat_unreachable") from exc


def login_miniprogram(code: str) -> TokenPair:
    """`wx.login` code → code2session → our own tokens. The session_key never leaves the server
    (and is not stored: nothing here needs it)."""
    if not code or len(code) > 128:
        raise BadInput("缺少微信登录凭证", field="code")
    session = _code_to_session(code)
    openid = session.get("openid")
    if not openid:
        raise UpstreamError("微信未返回用户标识", reason="wechat_error")
    try:
        return _wxa_tokens(openid, session.get("unionid"))
    except IntegrityError:
        # The same person's first login raced another (two taps): the other created the user.
        return _wxa_tokens(openid, session.get("unionid"))


def _wxa_tokens(openid: str, unionid: str | None) -> TokenPair:
    with transaction():
        user = db.session.scalar(select(User).where(User.wxa_openid == openid))
        if user is None:
            user = User(
                role=Role.PARENT,
                wxa_openid=openid,
                wechat_unionid=unionid,
                display_name="家长",
            )
            db.session.add(user)
            db.session.flush()
            audit.record("user.created_by_wxa", actor_id=user.id)
        elif not user.is_active:
            raise Unauthenticated("账号不存在或已停用", reason="user_inactive")
        if user.role is not Role.PARENT:
            # Staff use their own login; a mini-program identity only ever makes a parent.
            raise Forbidden("该微信账号已绑定工作人员账号，请使用工作人员登录")
        audit.record("login.wxa", actor_id=user.id)
        return _pair(user)


# --- official-account web authorisation (H5 inside WeChat) -----------------------------------

_OAUTH_ERRORS: dict[int, Callable[[], DomainError]] = {
    40029: lambda: Unauthenticated("微信授权已失效，请重新进入", reason="wechat_invalid_code"),
    40163: lambda: Unauthenticated("微信授权已使用，请重新进入", reason="wechat_code_used"),
}


def _web_oauth(state: str = "") -> WebOAuth:
    cfg = current_app.config
    if not cfg.get("WECHAT_APP_ID") or not cfg.get("WECHAT_APP_SECRET"):
        raise UpstreamError("公众号网页授权未配置", reason="wechat_not_configured")
    return WebOAuth(
        cfg["WECHAT_APP_ID"],
        cfg["WECHAT_APP_SECRET"],
        cfg["PUBLIC_URL"].rstrip("/") + "/",
        api_base=cfg["WECHAT_API_BASE"],
        oauth_base=cfg["WECHAT_OAUTH_BASE"],
        timeout=cfg["WECHAT_HTTP_TIMEOUT_S"],
        state=state,
    )


def wechat_authorize_url(state: str) -> str:
    """Where the in-app browser goes to be authorised silently (snsapi_base): WeChat sends it
    back to the app's address with `?code=…&state=…`. ``state`` is the page's own check."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,64}", state or ""):
        raise BadInput("state 须为 1 到 64 位字母或数字", field="state")
    return _web_oauth(state).authorize_url


def login_wechat_web(code: str) -> TokenPair:
    """The code WeChat handed the page → the person's openid on the official account → our
    tokens. A person not known yet becomes a parent (with no centre until they bind one); the
    same openid is the one the chat bot knows, so chat and H5 are one account."""
    if not code or len(code) > 128:
        raise BadInput("缺少微信授权凭证", field="code")
    oauth = _web_oauth()
    try:
        openid = oauth.fetch_access_token(code).get("openid")
    except WeChatOAuthException as exc:
        if exc.errcode in _OAUTH_ERRORS:
            raise _OAUTH_ERRORS[exc.errcode]() from exc
        current_app.logger.warning("web authorisation failed: errcode=%s", exc.errcode)
        raise UpstreamError("微信授权失败，请稍后再试", reason="wechat_error") from exc
    except RequestException as exc:
        current_app.logger.warning("web authorisation unreachable: %s", type(exc).__name__)
        raise UpstreamError("无法连接微信服务器，请稍后再试", reason="wechat_unreachable") from exc
    finally:
        oauth._http.close()
    if not openid:
        raise UpstreamError("微信未返回用户标识", reason="wechat_error")
    known = parent_for_wechat(openid)  # the chat bot's parent, or a new one
    with transaction():
        user = db.session.get(User, known.id)
        if user is None or not user.is_active:
            raise Unauthenticated("账号不存在或已停用", reason="user_inactive")
        if user.role is not Role.PARENT:
            # Staff sign in with their account and password, even inside WeChat.
            raise Forbidden("该微信已绑定工作人员账号，请使用账号密码登录", reason="staff_account")
        audit.record("login.wechat", actor_id=user.id)
        return _pair(user)
