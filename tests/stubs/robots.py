"""Local DingTalk and Feishu custom robots for tests, checking signatures and rate limits the
way the platforms do.

DingTalk `POST /robot/send?access_token=&timestamp=&sign=`: 300001 unknown token; 310000 when
the sign is not base64(HMAC-SHA256(secret, "timestamp\\nsecret")) or the timestamp is more than an
hour off; a body over 20,000 bytes → 460101 "message too long, exceed 20000 bytes"; over 20
messages a minute → 130101, and the robot stays banned for `ban_s` (10 min).

Feishu `POST /open-apis/bot/v2/hook/<token>`: 19001 unknown hook; 19021 when `sign` is not
base64(HMAC-SHA256(key="timestamp\\nsecret", msg="")) or the timestamp is an hour off; a body
over 20 KB (the custom-bot guide: "请求体的数据大小不能超过 20 KB", taken as 20,000 bytes) →
19036, the code Feishu answers an oversized message with; over 5 a second or 100 a minute →
11232 (also to everything while `throttled`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.stubs.base import SlidingLimit, StubServer

DINGTALK_BODY_MAX_BYTES = 20_000
FEISHU_BODY_MAX_BYTES = 20_000


class DingTalkStub(StubServer):
    name = "dingtalk"

    def __init__(self, per_minute: tuple[int, float] = (20, 60.0), ban_s: float = 600) -> None:
        super().__init__()
        self.robots: dict[str, str] = {}  # access_token → secret
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.refused: list[int] = []  # errcodes answered
        self._limit = SlidingLimit(*per_minute)
        self._ban_s = ban_s
        self._banned_until: dict[str, float] = {}

    def add_robot(self) -> tuple[str, str]:
        token, secret = secrets.token_hex(16), "SEC" + secrets.token_hex(24)
        self.robots[token] = secret
        self.messages[token] = []
        return token, secret

    def _refuse(self, code: int, message: str) -> Response:
        self.refused.append(code)
        return self.json({"errcode": code, "errmsg": message})

    def handle(self, request: Request, body: Any) -> Response:
        if request.path != "/robot/send" or request.method != "POST":
            return Response("not found", status=404)
        token = request.args.get("access_token", "")
        if token not in self.robots:
            return self._refuse(300001, "token is not exist")
        secret = self.robots[token]
        timestamp, sign = request.args.get("timestamp", ""), request.args.get("sign", "")
        expected = base64.b64encode(
            hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        try:
            fresh = abs(time.time() * 1000 - int(timestamp)) < 3600 * 1000
        except ValueError:
            fresh = False
        if not fresh or not hmac.compare_digest(expected, sign):
            return self._refuse(310000, "sign not match")
        if len(request.get_data()) > DINGTALK_BODY_MAX_BYTES:
            return self._refuse(460101, "message too long, exceed 20000 bytes")
        now = time.monotonic()
        with self.lock:
            if self._banned_until.get(token, 0) > now:
                return self._refuse(130101, "send too fast, exceed 20 times per minute")
            if not self._limit.allow(token, now):
                self._banned_until[token] = now + self._ban_s
                return self._refuse(130101, "send too fast, exceed 20 times per minute")
            self.messages[token].append(body)
        return self.json({"errcode": 0, "errmsg": "ok"})


class FeishuStub(StubServer):
    name = "feishu"

    def __init__(
        self, per_second: tuple[int, float] = (5, 1.0), per_minute: tuple[int, float] = (100, 60.0)
    ) -> None:
        super().__init__()
        self.robots: dict[str, str] = {}  # hook token → secret
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.refused: list[int] = []
        self._second = SlidingLimit(*per_second)
        self._minute = SlidingLimit(*per_minute)

    def add_robot(self) -> tuple[str, str]:
        token, secret = secrets.token_hex(16), secrets.token_urlsafe(24)
        self.robots[token] = secret
        self.messages[token] = []
        return token, secret

    def _refuse(self, code: int, message: str) -> Response:
        self.refused.append(code)
        return self.json({"code": code, "data": {}, "msg": message})

    def handle(self, request: Request, body: Any) -> Response:
        prefix = "/open-apis/bot/v2/hook/"
        if not request.path.startswith(prefix) or request.method != "POST":
            return Response("not found", status=404)
        token = request.path[len(prefix) :]
        if token not in self.robots:
            return self._refuse(19001, "param invalid: incoming webhook access token invalid")
        body = body or {}
        secret, timestamp = self.robots[token], str(body.get("timestamp", ""))
        expected = base64.b64encode(
            hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
        ).decode()
        try:
            fresh = abs(time.time() - int(timestamp)) < 3600
        except ValueError:
            fresh = False
        if not fresh or not hmac.compare_digest(expected, str(body.get("sign", ""))):
            return self._refuse(
                19021, "sign match fail or timestamp is not within one hour from current time"
            )
        if len(request.get_data()) > FEISHU_BODY_MAX_BYTES:
            return self._refuse(19036, "The message exceeds the size limit of 20KB")
        now = time.monotonic()
        with self.lock:
            if (
                self.throttled
                or not self._second.allow(token, now)
                or not self._minute.allow(token, now)
            ):
                return self._refuse(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
            self.messages[token].append(body)
        return self.json({"code": 0, "data": {}, "msg": "success"})


@pytest.fixture
def dingtalk_stub() -> Iterator[DingTalkStub]:
    with DingTalkStub() as stub:
        yield stub


@pytest.fixture
def feishu_stub() -> Iterator[FeishuStub]:
    with FeishuStub() as stub:
        yield stub
