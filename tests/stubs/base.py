"""What every chat-platform stub shares: a real HTTP server on 127.0.0.1 in a thread, a record
of what it received, and outages on demand.

Outages: `go_down("refused")` closes the listening socket (clients get "connection refused")
and `come_back()` listens again on the same port; `go_down("5xx")` answers 503 to everything.
`down_for(seconds)` does either for a while. `slow_down(seconds)` makes every answer take that
long (a hanging platform); `throttled = True` answers the platform's "too fast" code. HTTP/1.0,
one request at a time, connection closed after each answer — no keep-alive socket outlives a
test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The record in `received` is the log; and request lines carry robot keys."""


class StubServer:
    name = "stub"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []  # every request: method, path, query, json
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._down_mode: str | None = None
        self._down_until: float | None = None
        self.delay_s = 0.0
        # Answer "too fast" (the platform's throttling code) to every message (see subclasses).
        self.throttled = False

    # -- control ------------------------------------------------------------------------------

    def start(self) -> StubServer:
        self._listen(self._port or 0)
        return self

    def _listen(self, port: int) -> None:
        for _ in range(50):  # the old socket may linger a moment after close
            try:
                self._server = make_server(
                    "127.0.0.1", port, self._wsgi, threaded=False, request_handler=_Quiet
                )
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name}: cannot listen on {port} again")
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._port = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{self.name}-stub",
            daemon=True,
        )
        self._thread.start()

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def stop(self) -> None:
        self._close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._port is not None, "stub not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def go_down(self, mode: str = "refused") -> None:
        self._down_mode = mode
        if mode == "refused":
            self._close()

    def come_back(self) -> None:
        mode, self._down_mode, self._down_until = self._down_mode, None, None
        if mode == "refused" and self._server is None:
            self._listen(self.port)

    def down_for(self, seconds: float, mode: str = "5xx") -> None:
        """Down now, back by itself after `seconds` (checked on each request, or by
        `tick()` for refused connections)."""
        self.go_down(mode)
        self._down_until = time.monotonic() + seconds

    def slow_down(self, seconds: float) -> None:
        """Take `seconds` over every answer from now on (a platform that hangs)."""
        self.delay_s = seconds

    def tick(self) -> None:
        if self._down_until is not None and time.monotonic() >= self._down_until:
            self.come_back()

    # -- serving ------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.tick()
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            body = None
        with self.lock:
            self.received.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": {k: request.args.get(k, "") for k in request.args},
                    "json": body,
                    "size": len(request.get_data()),  # the body's bytes, as the platform counts
                    "at": time.time(),
                }
            )
        if self.delay_s:
            time.sleep(self.delay_s)
        if self._down_mode == "5xx":
            return Response("service unavailable", status=503)(environ, start_response)
        response = self.handle(request, body)
        return response(environ, start_response)

    def handle(self, request: Request, body: Any) -> Response:
        raise NotImplementedError

    @staticmethod
    def json(body: dict[str, Any]) -> Response:
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json")


class SlidingLimit:
    """At most `limit` events per `window_s` per key (the platform's rate rule)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, list[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        events = [t for t in self._events.get(key, []) if t > now - self.window_s]
        allowed = len(events) < self.limit
        if allowed:
            events.append(now)
        self._events[key] = events
        return allowed
