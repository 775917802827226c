"""Chat benchmark (not a test): callback latency under concurrent signed messages, and how long
a notice takes from being issued to reaching a group robot.

    .venv/bin/python bench/bots.py [--messages 200] [--notices 20] [--json]

Runs the real app — callbacks in a threaded HTTP server in its own process (the load generator
must not share its GIL), deliveries on the embedded Huey consumer — on a fresh SQLite database
(or `DATABASE_URL`) against the local platform stubs from tests/stubs, as the one-machine
default does. Phase 1 times 50 callbacks one at a time (the service time), then posts
`--messages` signed text messages (the 通知 command of an operator,
each with its own MsgId) all at once from as many threads and times each callback. Phase 2
issues `--notices` notices one after another through the notice service and times each until
the WeCom group robot stub has it (woken by the commit, delivered by the Huey worker).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Finding, FindingCategory, Severity  # noqa: E402
from app.services import notices  # noqa: E402
from app.tasks import start_embedded_consumer  # noqa: E402
from config import DevelopmentConfig  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.bots_support import (  # noqa: E402
    MP_AES_KEY,
    MP_APPID,
    MP_SECRET,
    MP_TOKEN,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    text_xml,
    wechat_plain,
)
from tests.stubs.robots import DingTalkStub, FeishuStub  # noqa: E402
from tests.stubs.wechat import WeChatStub  # noqa: E402
from tests.stubs.wecom import WeComStub  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        pass


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def build(instance: Path, stubs: dict) -> tuple:  # type: ignore[type-arg]
    robots = {"bench-wecom": {"channel": "wecom_robot", "key": stubs["robot_key"]}}
    config = DevelopmentConfig(
        INSTANCE_PATH=str(instance),
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        DEMO_MODE=False,
        WECHAT_APP_ID=MP_APPID,
        WECHAT_APP_SECRET=MP_SECRET,
        WECHAT_TOKEN=MP_TOKEN,
        WECHAT_AES_KEY=MP_AES_KEY,
        WECHAT_API_BASE=stubs["wechat"].base_url,
        WECHAT_TEMPLATE_ID="tpl-notice",
        WECOM_CORP_ID=stubs["wecom"].corp_id,
        WECOM_AGENT_ID=stubs["wecom"].agent_id,
        WECOM_SECRET=stubs["wecom"].secret,
        WECOM_TOKEN=WECOM_TOKEN,
        WECOM_AES_KEY=WECOM_AES_KEY,
        WECOM_API_BASE=stubs["wecom"].base_url,
        CHAT_ROBOTS=json.dumps(robots),
        OUTBOX_POLL_S=1.0,
    )
    app = create_app(config)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        district = f.district("美兰区")
        agency = f.agency(district)
        agency.chat_destinations = {"wecom_robot": "bench-wecom"}
        centre = f.centre(district, "基准测试托管中心")
        inspector = f.inspector_of(agency)
        operator = f.operator_of(centre)
        operator.wechat_openid = "o-bench-operator-000000000000"
        db.session.commit()
        ids = (inspector.id, operator.wechat_openid, centre.id)
        db.session.remove()
    return app, ids


def callbacks(base_url: str, openid: str, count: int) -> list[float]:
    signed = [wechat_plain(text_xml(openid, "通知")) for _ in range(count)]
    barrier = threading.Barrier(count)
    session_local = threading.local()

    def one(s) -> float:  # type: ignore[no-untyped-def]
        http = getattr(session_local, "http", None) or requests.Session()
        session_local.http = http
        barrier.wait()
        started = time.perf_counter()
        answer = http.post(
            f"{base_url}/wechat/callback",
            params=s.query,
            data=s.body.encode(),
            headers={"Content-Type": "text/xml"},
        )
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200 and "<Content>" in answer.text, answer.text[:200]
        http.close()
        return elapsed * 1000

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, signed))


def notify(app, wecom: WeComStub, inspector_id: int, centre_id: int, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    from app.models import User

    key = next(iter(wecom.robot_keys))
    latencies = []
    with app.app_context():
        for n in range(count):
            inspector = db.session.get(User, inspector_id)
            finding = Finding(
                centre_id=centre_id,
                category=FindingCategory.HYGIENE,
                severity=Severity.II,
                description=f"基准问题 {n}",
                recorded_by_id=inspector_id,
            )
            db.session.add(finding)
            db.session.commit()
            draft = notices.create_draft(
                inspector,
                notices.DraftInput(
                    centre_id=centre_id,
                    finding_ids=(finding.id,),
                    requirements="立即整改",
                    working_days=5,
                ),
            )
            before = len(wecom.robot_messages[key])
            started = time.time()
            notices.issue(inspector, draft.id)
            deadline = started + 30
            while len(wecom.robot_messages[key]) == before and time.time() < deadline:
                time.sleep(0.005)
            arrived = [r["at"] for r in wecom.received if r["path"] == "/cgi-bin/webhook/send"]
            latencies.append(max(arrived) - started if len(arrived) > before else float("inf"))
            db.session.remove()
            # Stay inside the robot's 20 a minute: the pacing is not what is measured here.
            time.sleep(0.05)
    return latencies


def serve(port: int) -> None:
    """The callback server in its own process (the load generator must not share its GIL)."""
    from app import create_app as make

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", port, make(), threaded=True, request_handler=_Quiet)
    print("READY", flush=True)
    server.serve_forever()


def start_server_process(app) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg, no-untyped-def]
    """The same settings as `app`, passed as the environment a deployment would use."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = app.config["BK_CONFIG"]
    env = {**os.environ, "BK_ENV": "development"}
    for name in dataclasses.asdict(config):
        value = getattr(config, name)
        if name != "extra" and value is not None:
            env[name] = str(value)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "READY"
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--notices", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    wechat = WeChatStub(appid=MP_APPID, secret=MP_SECRET).start()
    wecom = WeComStub(per_robot=(1000, 60.0)).start()
    stubs = {"wechat": wechat, "wecom": wecom, "robot_key": wecom.add_robot()}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    others = [DingTalkStub().start(), FeishuStub().start()]
    with tempfile.TemporaryDirectory(prefix="bk-bench-") as tmp:
        app, (inspector_id, openid, centre_id) = build(Path(tmp), stubs)
        wechat.follow(openid)
        # The dispatcher's pacing would hold the robot to 20 a minute: lift it for the run.
        from bots.channels import Pace

        app.extensions["bk_chat"].get("wecom_robot").paces = (Pace(1000, 60.0),)
        server, base_url = start_server_process(app)
        consumer = start_embedded_consumer(app)
        try:
            callbacks(base_url, openid, 10)  # warm up
            serial = [callbacks(base_url, openid, 1)[0] for _ in range(50)]
            latencies = callbacks(base_url, openid, args.messages)
            notify_s = notify(app, wecom, inspector_id, centre_id, args.notices)
        finally:
            consumer.stop(graceful=False)
            server.terminate()
            server.wait(timeout=10)
            if server.stdout is not None:
                server.stdout.close()
            app.extensions["bk_chat"].close()
            for stub in (wechat, wecom, *others):
                stub.stop()
    result = {
        "database": "postgresql"
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        else "sqlite",
        "messages": args.messages,
        "callback_p50_ms": round(statistics.median(latencies), 1),
        "callback_p99_ms": round(percentile(latencies, 99), 1),
        "callback_max_ms": round(max(latencies), 1),
        "callback_serial_p50_ms": round(statistics.median(serial), 1),
        "notices": args.notices,
        "notify_p50_s": round(statistics.median(notify_s), 3),
        "notify_p95_s": round(percentile(notify_s, 95), 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'measure':<34}{'value':>12}")
    rows = [
        (f"callback p50 ({args.messages} concurrent)", f"{result['callback_p50_ms']} ms"),
        (f"callback p99 ({args.messages} concurrent)", f"{result['callback_p99_ms']} ms"),
        ("callback max", f"{result['callback_max_ms']} ms"),
        ("callback p50, one at a time", f"{result['callback_serial_p50_ms']} ms"),
        (f"notice issued → robot p50 ({args.notices})", f"{result['notify_p50_s']} s"),
        (f"notice issued → robot p95 ({args.notices})", f"{result['notify_p95_s']} s"),
    ]
    for name, value in rows:
        print(f"{name:<34}{value:>12}")
    print(f"database: {result['database']}")


if __name__ == "__main__":
    main()
