"""wechatpy API clients pointed at a configurable base URL.

wechatpy hard-codes the platform host in its modules, so overriding `API_BASE_URL` alone misses
calls. Mounting an adapter on the client's `requests.Session` that rewrites the origin keeps
every path and query exactly as wechatpy builds them, which is what local stubs need.
"""

from __future__ import annotations

from typing import Any

import redis
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.oauth import WeChatOAuth
from wechatpy.session import SessionStorage
from wechatpy.session.redisstorage import RedisStorage

WECHAT_ORIGIN = "https://api.weixin.qq.com"


class OriginRewriteAdapter(HTTPAdapter):
    def __init__(self, origin_from: str, origin_to: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.origin_from = origin_from.rstrip("/")
        self.origin_to = origin_to.rstrip("/")

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        if request.url.startswith(self.origin_from):
            request.url = self.origin_to + request.url[len(self.origin_from) :]
        return super().send(request, **kwargs)


def point_at(client: Any, api_base: str, origin: str = WECHAT_ORIGIN) -> Any:
    """Send the client's calls for `origin` to `api_base` (no-op for the real host)."""
    if api_base.rstrip("/") != origin:
        client._http.mount(origin + "/", OriginRewriteAdapter(origin, api_base))
    return client


def token_storage(redis_url: str | None) -> SessionStorage | None:
    """Where wechatpy keeps access tokens. Each fetch of a new token retires the one before
    (after five minutes), so processes that each fetched their own would keep invalidating one
    another: with Redis configured, every process shares one token per account. None keeps it
    in the process (the embedded default: one process)."""
    if not redis_url:
        return None
    return RedisStorage(redis.Redis.from_url(redis_url), prefix="bk:wechatpy")


def wechat_client(
    appid: str,
    secret: str,
    api_base: str,
    timeout: float,
    session: SessionStorage | None = None,
) -> WeChatClient:
    client = WeChatClient(appid, secret, timeout=timeout, session=session)
    return point_at(client, api_base)


def code_to_session(client: WeChatClient, js_code: str) -> dict[str, Any]:
    """Mini-program code2session, with exactly the parameters WeChat documents.

    wechatpy's `wxa.code_to_session` adds an `access_token` to the query and so first fetches
    one from /cgi-bin/token (without a timeout). code2session needs none, and fetching one
    needs this server's IP on the whitelist and invalidates the token any other server holds
    for the mini-program. An explicit `access_token=None` stops wechatpy adding it (requests
    drops parameters whose value is None).
    """
    return client.get(
        WECHAT_ORIGIN + "/sns/jscode2session",
        params={
            "appid": client.appid,
            "secret": client.secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
            "access_token": None,
        },
    )


class WebOAuth(WeChatOAuth):
    """Official-account web authorisation (网页授权) with the hosts from config and a timeout
    on every call (wechatpy's own sets none)."""

    def __init__(
        self,
        appid: str,
        secret: str,
        redirect_uri: str,
        *,
        api_base: str,
        oauth_base: str,
        timeout: float,
        state: str = "",
    ) -> None:
        super().__init__(appid, secret, redirect_uri, scope="snsapi_base", state=state)
        self.OAUTH_BASE_URL = oauth_base.rstrip("/") + "/connect/"
        self.timeout = timeout
        point_at(self, api_base)

    def _request(self, method, url_or_endpoint, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)
