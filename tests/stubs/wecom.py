"""A local WeCom (企业微信, qyapi.weixin.qq.com) for tests: the app API and the group robots'
webhook, with WeCom's rules and error codes.

- `GET /cgi-bin/gettoken?corpid=&corpsecret=` → access_token (40013 unknown corp, 40001 wrong
  secret).
- `POST /cgi-bin/message/send?access_token=` app message to members: 40014 bad token, 40056 bad
  agentid; unknown members come back in `invaliduser`. Over 30 messages a minute to one member
  the excess is **silently dropped** (errcode 0, as WeCom documents) and listed in `dropped`.
  Text content over 2048 bytes is **silently cut** there ("最长不超过2048个字节，超过将截断"):
  the member gets the first 2048 bytes, listed in `truncated`. `throttled = True`: 45009 (接口
  调用超过限制) to every send.
- `GET /cgi-bin/media/get?access_token=&media_id=` → the file, or 40007.
- `POST /cgi-bin/webhook/send?key=` group robot: 93000 unknown key, 40058 markdown content over
  4096 bytes, 45009 over 20 messages a minute per robot.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.stubs.base import SlidingLimit, StubServer

CORP_ID = "ww-test-corp"
CORP_SECRET = "wecom-test-secret"
AGENT_ID = 1000002
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048


class WeComStub(StubServer):
    name = "wecom"

    def __init__(
        self,
        corp_id: str = CORP_ID,
        secret: str = CORP_SECRET,
        agent_id: int = AGENT_ID,
        per_member: tuple[int, float] = (30, 60.0),
        per_robot: tuple[int, float] = (20, 60.0),
    ) -> None:
        super().__init__()
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.members: set[str] = set()
        self.robot_keys: set[str] = set()
        self.media: dict[str, bytes] = {}
        self.tokens: list[str] = []
        self.app_messages: list[dict[str, Any]] = []  # delivered to a member
        self.dropped: list[dict[str, Any]] = []  # over the per-member limit
        self.truncated: list[dict[str, Any]] = []  # text cut to 2048 bytes by WeCom
        self.robot_messages: dict[str, list[dict[str, Any]]] = {}
        self._member_limit = SlidingLimit(*per_member)
        self._robot_limit = SlidingLimit(*per_robot)

    def add_robot(self, key: str | None = None) -> str:
        key = key or secrets.token_hex(16)
        self.robot_keys.add(key)
        self.robot_messages.setdefault(key, [])
        return key

    def handle(self, request: Request, body: Any) -> Response:
        q = request.args
        if request.path == "/cgi-bin/gettoken":
            if q.get("corpid") != self.corp_id:
                return self.json({"errcode": 40013, "errmsg": "invalid corpid"})
            if q.get("corpsecret") != self.secret:
                return self.json({"errcode": 40001, "errmsg": "invalid credential"})
            token = secrets.token_urlsafe(32)
            with self.lock:
                self.tokens.append(token)
            return self.json(
                {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
            )
        if request.path == "/cgi-bin/webhook/send" and request.method == "POST":
            return self._robot(q.get("key", ""), body or {})
        if q.get("access_token") not in self.tokens:
            return self.json({"errcode": 40014, "errmsg": "invalid access_token"})
        if request.path == "/cgi-bin/message/send" and request.method == "POST":
            return self._app_message(body or {})
        if request.path == "/cgi-bin/media/get":
            data = self.media.get(q.get("media_id", ""))
            if data is None:
                return self.json({"errcode": 40007, "errmsg": "invalid media_id"})
            return Response(data, content_type="image/jpeg")
        return Response("not found", status=404)

    def _app_message(self, body: dict[str, Any]) -> Response:
        if body.get("agentid") != self.agent_id:
            return self.json({"errcode": 40056, "errmsg": "invalid agentid"})
        if self.throttled:
            return self.json({"errcode": 45009, "errmsg": "api freq out of limit"})
        content = (body.get("text") or {}).get("content")
        if isinstance(content, str) and len(content.encode()) > TEXT_MAX_BYTES:
            cut = content.encode()[:TEXT_MAX_BYTES].decode("utf-8", errors="ignore")
            body = {**body, "text": {**body["text"], "content": cut}}
            with self.lock:
                self.truncated.append(body)
        invalid = []
        for member in str(body.get("touser") or "").split("|"):
            if member not in self.members:
                invalid.append(member)
                continue
            with self.lock:
                if self._member_limit.allow(member):
                    self.app_messages.append({"to": member, **body})
                else:
                    self.dropped.append({"to": member, **body})
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": secrets.token_hex(8)}
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        return self.json(answer)

    def _robot(self, key: str, body: dict[str, Any]) -> Response:
        if key not in self.robot_keys:
            return self.json({"errcode": 93000, "errmsg": "invalid webhook url"})
        if body.get("msgtype") == "markdown":
            content = (body.get("markdown") or {}).get("content", "")
            if len(content.encode()) > MARKDOWN_MAX_BYTES:
                return self.json(
                    {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
                )
        with self.lock:
            if not self._robot_limit.allow(key):
                return self.json({"errcode": 45009, "errmsg": "api freq out of limit"})
            self.robot_messages.setdefault(key, []).append(body)
        return self.json({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
def wecom_stub() -> Iterator[WeComStub]:
    with WeComStub() as stub:
        yield stub
