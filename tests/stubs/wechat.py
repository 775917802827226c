"""A local WeChat API server for tests: the real endpoints, the real rules, the real error codes.

It listens on 127.0.0.1 (a free port) in a background thread and answers the way
api.weixin.qq.com does: HTTP 200 with a JSON body carrying `errcode`/`errmsg` on failure (the
message gets a `rid` suffix as WeChat's does, so nobody matches on the text). Every request is
recorded (method, path, query) so tests can assert exactly what the app sent.

Endpoints:
- `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=` → access_token, 7200 s
  (40002 bad grant_type, 40013 unknown appid, 40001 wrong secret, 40164 IP not whitelisted).
- `GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code` (mini-program
  login) → openid, session_key and unionid when the user has one (40013 unknown appid, 40125
  wrong secret, 40002 bad grant_type, 41008 no code, 40029 unknown or expired code, 40163 code
  used before, 45011 over the per-minute quota, -1 when told to be busy).

Official-account web authorisation (网页授权, snsapi_base), played the way WeChat's in-app browser
sees it:
- `GET /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=&state=` is the
  page WeChat shows: for the user holding the phone (`oauth_openid`) it issues a code (5 min,
  single use) and answers 302 to `redirect_uri?code=…&state=…`. Errors are pages, as WeChat's
  are (HTTP 200, no redirect): an unknown appid, a redirect_uri whose host is not one of the
  account's authorised domains (`oauth_domains`, 10003), a scope other than snsapi_base /
  snsapi_userinfo (10005), a response_type other than code.
- `GET /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code` → the user's
  openid with a web access token (40013 unknown appid, 40125 wrong secret, 40029 unknown or
  expired code, 40163 code used before).

Official-account messaging (the access token must be one this stub issued, else 40001):
- `POST /cgi-bin/message/custom/send` customer-service message: only within 48 hours of the
  user's last message (`user_wrote(openid)`), else 45015; at most 5 per window, else 45047.
- `POST /cgi-bin/message/template/send`: 40037 for an unknown template id, 40003 unknown openid
  (one never registered with `follow(openid)` or `user_wrote`); returns a msgid.
  Text content over 2048 bytes (UTF-8) → 45002.
- `GET /cgi-bin/media/get?media_id=` the temporary file (`add_media`), else 40007.
- `throttled = True`: the message endpoints answer 45009 (the account's daily API quota is
  used up: "reach max api daily quota limit").

Mini-program subscription messages (订阅消息), for a mini-program registered with `add_app`:
- `POST /cgi-bin/message/subscribe/send` with an access token issued to the mini-program (any
  other token: 40001): 40037 for a template the mini-program did not pick
  (`add_subscribe_template`); 40003 unless `touser` is a user of that mini-program; 47003 when
  `data` misses one of the template's keys or a value breaks its type's rule (thing ≤ 20
  characters, phrase ≤ 5 Chinese characters, time like 15:01 or 2019年10月1日 15:01, no control
  characters); 41030 for a `page` not in `wxa_pages`; 43101 unless the user has a grant left
  (`grant_subscription`): each one-time grant lets exactly one message through.
Received messages land in `custom_messages` / `template_messages` / `subscribe_messages`.
`unavailable = True` answers HTTP 503 to everything (an outage).

Use the `wechat_stub` fixture, or `with WeChatStub() as stub:`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

# Test config's mini-program credentials (config.TestingConfig), so an app built from the default
# test config already matches the stub.
DEFAULT_APPID = "wx-test-miniprogram"
DEFAULT_SECRET = "wxa-test-secret"

# WeChat documents at most 100 code2session calls a minute (per user); tests lower it.
DEFAULT_RATE_LIMIT = 100
CODE_TTL_S = 5 * 60
SERVICE_WINDOW_S = 48 * 3600  # customer-service messages only this long after the user wrote
CUSTOM_PER_WINDOW = 5
CUSTOM_TEXT_MAX_BYTES = 2048
THING_MAX_CHARS, PHRASE_MAX_CHARS = 20, 5
_TIME = re.compile(
    r"^((\d{4}年)?\d{1,2}月\d{1,2}日 |\d{4}[-/.]\d{1,2}[-/.]\d{1,2} )?\d{1,2}:\d{2}(:\d{2})?$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    query_string: str


@dataclass
class _Code:
    openid: str
    session_key: str
    unionid: str | None
    expires_at: float
    used: bool = False


@dataclass
class WeChatStub:
    appid: str = DEFAULT_APPID
    secret: str = DEFAULT_SECRET
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    # Failure modes a test can switch on.
    busy: bool = False  # every call answers -1 "system error"
    ip_whitelisted: bool = True  # False: /cgi-bin/token answers 40164
    hang: bool = False  # hold every request until the stub stops (client timeouts)
    requests: list[Recorded] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    unavailable: bool = False  # HTTP 503 to everything
    templates: set[str] = field(default_factory=lambda: {"tpl-notice"})
    custom_messages: list[dict[str, Any]] = field(default_factory=list)
    template_messages: list[dict[str, Any]] = field(default_factory=list)
    subscribe_messages: list[dict[str, Any]] = field(default_factory=list)
    throttled: bool = False  # message sends answer 45009 (daily API quota used up)
    # Other accounts on the same API host (a mini-program next to the official account):
    # appid → secret; their tokens are their own.
    apps: dict[str, str] = field(default_factory=dict)
    # Mini-program subscription templates: template id → its keys (thing1, phrase2, …).
    subscribe_templates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    wxa_pages: set[str] = field(default_factory=lambda: {"pages/web/index"})
    # Web authorisation: the account's authorised domains and who holds the phone.
    oauth_domains: set[str] = field(default_factory=lambda: {"127.0.0.1"})
    oauth_openid: str = field(default_factory=lambda: "o" + secrets.token_urlsafe(20))

    def __post_init__(self) -> None:
        self._codes: dict[str, _Code] = {}
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._last_wrote: dict[str, float] = {}  # openid → when they last wrote to us
        self._custom_sent: dict[str, int] = {}  # openid → customer-service messages this window
        self._media: dict[str, bytes] = {}
        self._token_app: dict[str, str] = {}  # access token → the appid it was issued to
        self._wxa_users: dict[str, str] = {}  # mini-program openid → its mini-program's appid
        self._grants: dict[tuple[str, str], int] = {}  # (openid, template id) → grants left

    # -- control -----------------------------------------------------------------------------

    def start(self) -> WeChatStub:
        # Single-threaded and HTTP/1.0: one request at a time, connection closed after each
        # answer, so no keep-alive socket outlives a test.
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=False)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so stop() returns at once
            name="wechat-stub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the port then refuses connections). Safe to call twice."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> WeChatStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "stub not started"
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_code(
        self,
        code: str | None = None,
        *,
        openid: str | None = None,
        unionid: str | None = None,
        session_key: str | None = None,
        expires_in: float = CODE_TTL_S,
    ) -> str:
        """Register a `wx.login` code as WeChat would issue it to a user; returns the code."""
        code = code or "0" + secrets.token_hex(15)
        with self._lock:
            self._codes[code] = _Code(
                openid=openid or "o" + secrets.token_urlsafe(20),
                session_key=session_key or secrets.token_urlsafe(18),
                unionid=unionid,
                expires_at=time.monotonic() + expires_in,
            )
        return code

    def session_for(self, code: str) -> dict[str, str | None]:
        c = self._codes[code]
        return {"openid": c.openid, "session_key": c.session_key, "unionid": c.unionid}

    def user_wrote(self, openid: str, at: float | None = None) -> None:
        """The user sent the account a message at `at` (now): a 48-hour window opens."""
        with self._lock:
            self._last_wrote[openid] = time.time() if at is None else at
            self._custom_sent[openid] = 0

    def follow(self, openid: str) -> None:
        """The user follows the account (template messages reach them) but never wrote."""
        with self._lock:
            self._last_wrote.setdefault(openid, 0.0)

    def add_app(self, appid: str, secret: str) -> None:
        """Another account (e.g. the mini-program) that fetches tokens from this host."""
        with self._lock:
            self.apps[appid] = secret

    def add_subscribe_template(self, template_id: str, keys: tuple[str, ...]) -> None:
        with self._lock:
            self.subscribe_templates[template_id] = keys

    def grant_subscription(
        self, openid: str, template_id: str, *, appid: str, times: int = 1
    ) -> None:
        """The mini-program user tapped 允许 on `wx.requestSubscribeMessage` `times` times."""
        with self._lock:
            self._wxa_users[openid] = appid
            key = (openid, template_id)
            self._grants[key] = self._grants.get(key, 0) + times

    def wxa_user(self, openid: str, appid: str) -> None:
        """A user of the mini-program who has granted nothing."""
        with self._lock:
            self._wxa_users[openid] = appid

    def grants_left(self, openid: str, template_id: str) -> int:
        with self._lock:
            return self._grants.get((openid, template_id), 0)

    def add_media(self, data: bytes, media_id: str | None = None) -> str:
        media_id = media_id or secrets.token_urlsafe(24)
        with self._lock:
            self._media[media_id] = data
        return media_id

    def calls_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- the server --------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        query = {k: request.args.get(k, "") for k in request.args}
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    query,
                    request.query_string.decode("latin-1"),
                )
            )
        if self.hang:
            self._release.wait(timeout=30)
        if self.unavailable:
            return Response("service unavailable", status=503)(environ, start_response)
        if self.busy:
            body = _error(-1, "system error")
        elif request.path == "/cgi-bin/token" and request.method == "GET":
            body = self._token(query, request.remote_addr or "")
        elif request.path == "/sns/jscode2session" and request.method == "GET":
            body = self._jscode2session(query)
        elif request.path == "/connect/oauth2/authorize" and request.method == "GET":
            return self._authorize(query)(environ, start_response)
        elif request.path == "/sns/oauth2/access_token" and request.method == "GET":
            body = self._oauth_token(query)
        elif request.path.startswith("/cgi-bin/") and query.get("access_token") not in (
            self.access_tokens
        ):
            body = _error(40001, "invalid credential, access_token is invalid or not latest")
        elif request.path == "/cgi-bin/media/get" and request.method == "GET":
            data = self._media.get(query.get("media_id", ""))
            if data is not None:
                return Response(data, content_type="image/jpeg")(environ, start_response)
            body = _error(40007, "invalid media_id")
        elif request.path.startswith("/cgi-bin/message/") and self.throttled:
            body = _error(45009, "reach max api daily quota limit")
        elif request.path == "/cgi-bin/message/custom/send" and request.method == "POST":
            body = self._custom_send(json.loads(request.get_data() or b"{}"))
        elif request.path == "/cgi-bin/message/template/send" and request.method == "POST":
            body = self._template_send(json.loads(request.get_data() or b"{}"))
        elif request.path == "/cgi-bin/message/subscribe/send" and request.method == "POST":
            body = self._subscribe_send(
                self._token_app.get(query.get("access_token", ""), ""),
                json.loads(request.get_data() or b"{}"),
            )
        else:
            return Response("not found", status=404)(environ, start_response)
        response = Response(
            json.dumps(body, ensure_ascii=False),
            content_type="application/json; encoding=utf-8",
        )
        return response(environ, start_response)

    def _token(self, q: dict[str, str], ip: str) -> dict[str, Any]:
        if q.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        secrets_of = {self.appid: self.secret, **self.apps}
        appid = q.get("appid", "")
        if appid not in secrets_of:
            return _error(40013, "invalid appid")
        if q.get("secret") != secrets_of[appid]:
            return _error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        if not self.ip_whitelisted:
            return _error(40164, f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist")
        token = secrets.token_urlsafe(96)
        with self._lock:
            self.access_tokens.append(token)
            self._token_app[token] = appid
        return {"access_token": token, "expires_in": 7200}

    def _jscode2session(self, q: dict[str, str]) -> dict[str, Any]:
        if q.get("appid") != self.appid:
            return _error(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return _error(40125, "invalid appsecret")
        if q.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        if not q.get("js_code"):
            return _error(41008, "missing code")
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0] <= now - 60:
                self._calls.popleft()
            if len(self._calls) >= self.rate_limit_per_minute:
                return _error(45011, "api minute-quota reach limit  mustslower  retry next minute")
            self._calls.append(now)
            code = self._codes.get(q["js_code"])
            if code is None or code.expires_at <= now:
                return _error(40029, "invalid code")
            if code.used:
                return _error(40163, "code been used")
            code.used = True
        body: dict[str, Any] = {"session_key": code.session_key, "openid": code.openid}
        if code.unionid:
            body["unionid"] = code.unionid
        return body

    def _authorize(self, q: dict[str, str]) -> Response:
        def page(text: str) -> Response:
            html = f"<!doctype html><meta charset=utf-8><title>微信</title><p>{text}</p>"
            return Response(html, content_type="text/html; charset=utf-8")

        if q.get("appid") != self.appid:
            return page("appid 参数错误")
        redirect_uri = q.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or target.hostname not in self.oauth_domains:
            return page("redirect_uri 域名与后台配置不一致，错误码：10003")
        if q.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
            return page("scope 参数错误或没有 scope 权限，错误码：10005")
        if q.get("response_type") != "code":
            return page("response_type 参数错误")
        code = self.add_code(openid=self.oauth_openid)
        query = urlencode({"code": code, "state": q.get("state", "")})
        separator = "&" if target.query else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})

    def _oauth_token(self, q: dict[str, str]) -> dict[str, Any]:
        if q.get("appid") != self.appid:
            return _error(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return _error(40125, "invalid appsecret")
        if q.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        with self._lock:
            code = self._codes.get(q.get("code", ""))
            if code is None or code.expires_at <= time.monotonic():
                return _error(40029, "invalid code")
            if code.used:
                return _error(40163, "code been used")
            code.used = True
        return {
            "access_token": secrets.token_urlsafe(64),
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(64),
            "openid": code.openid,
            "scope": "snsapi_base",
        }

    def _custom_send(self, message: dict[str, Any]) -> dict[str, Any]:
        openid = message.get("touser", "")
        content = (message.get("text") or {}).get("content", "")
        if len(str(content).encode()) > CUSTOM_TEXT_MAX_BYTES:
            return _error(45002, "content size out of limit")
        with self._lock:
            wrote = self._last_wrote.get(openid)
            if wrote is None:
                return _error(40003, "invalid openid")
            if time.time() - wrote > SERVICE_WINDOW_S:
                return _error(45015, "response out of time limit or subscription is canceled")
            if self._custom_sent.get(openid, 0) >= CUSTOM_PER_WINDOW:
                return _error(45047, "out of response count limit")
            self._custom_sent[openid] = self._custom_sent.get(openid, 0) + 1
            self.custom_messages.append(message)
        return {"errcode": 0, "errmsg": "ok"}

    def _template_send(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("template_id") not in self.templates:
            return _error(40037, "invalid template_id")
        with self._lock:
            if message.get("touser") not in self._last_wrote:
                return _error(40003, "invalid openid")
            self.template_messages.append(message)
        return {"errcode": 0, "errmsg": "ok", "msgid": int(time.time() * 1000)}

    def _subscribe_send(self, appid: str, message: dict[str, Any]) -> dict[str, Any]:
        if appid not in self.apps:  # the official account's token: not a mini-program's
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        template_id, openid = message.get("template_id", ""), message.get("touser", "")
        keys = self.subscribe_templates.get(template_id)
        if keys is None:
            return _error(40037, "invalid template_id")
        with self._lock:
            if self._wxa_users.get(openid) != appid:
                return _error(40003, "invalid openid")
        data = message.get("data") or {}
        for key in keys:
            problem = _subscribe_value_problem(key, (data.get(key) or {}).get("value"))
            if problem:
                return _error(47003, f"argument invalid! data.{key}.value {problem}")
        if message.get("page") is not None and str(message["page"]).split("?")[0] not in (
            self.wxa_pages
        ):
            return _error(41030, "invalid page")
        with self._lock:
            left = self._grants.get((openid, template_id), 0)
            if left <= 0:
                return _error(43101, "user refuse to accept the msg")
            self._grants[(openid, template_id)] = left - 1
            self.subscribe_messages.append(message)
        return {"errcode": 0, "errmsg": "ok", "msgid": int(time.time() * 1000)}


def _subscribe_value_problem(key: str, value: Any) -> str | None:
    """Why WeChat would refuse this value for a key of this type (None: it is fine)."""
    if not isinstance(value, str) or not value:
        return "empty"
    if _CONTROL.search(value):
        return "invalid"
    kind = key.rstrip("0123456789")
    if kind == "thing" and len(value) > THING_MAX_CHARS:
        return "exceeds limit"
    if kind == "phrase" and (len(value) > PHRASE_MAX_CHARS or not _HAN.match(value)):
        return "invalid"
    if kind == "time" and not _TIME.match(value):
        return "invalid"
    return None


def _error(errcode: int, errmsg: str) -> dict[str, Any]:
    # WeChat appends a request id to every message.
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(8)}"
    return {"errcode": errcode, "errmsg": f"{errmsg}, rid: {rid}"}


@pytest.fixture
def wechat_stub() -> Iterator[WeChatStub]:
    """A running WeChat API stub registered with the test config's mini-program credentials."""
    with WeChatStub() as stub:
        yield stub
