"""Chat benchmark (not a test): callback latency under concurrent signed messages, and how long
a notice takes from being issued to reaching a group robot.

    .venv/bin/python bench/bots.py [--messages 200] [--workers 1,2] [--notices 15] [--json]

Runs the real app on a fresh SQLite database (or `DATABASE_URL`) against the local platform
stubs from tests/stubs. Callbacks go to the production web server — gunicorn with the gevent
worker and deploy/gunicorn.conf.py, `BK_ENV=production`, in its own processes — once per
process count in `--workers`. The load comes from one asyncio client over raw sockets (so the
client costs little next to the server): it opens `--messages` keep-alive connections, then
writes one signed WeChat text message on each at the same instant (the 通知 command of an
operator, each with its own MsgId) and times every answer. The baseline, in the same run on the
same server: the same message sent one at a time over one connection. Phase 2 issues
`--notices` notices one after another through the notice service and times each until the WeCom
group robot stub has it (woken by the commit, delivered by the embedded Huey consumer).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from procstat import children_of, cpu_s  # noqa: E402 - bench/ is on sys.path

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


def signed_requests(host: str, openid: str, count: int) -> list[bytes]:
    requests_ = []
    for _ in range(count):
        signed = wechat_plain(text_xml(openid, "通知"))
        body = signed.body.encode()
        query = "&".join(f"{k}={v}" for k, v in signed.query.items())
        requests_.append(
            f"POST /wechat/callback?{query} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return requests_


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    length = int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])
    return int(head[9:12]), await reader.readexactly(length)


def _check(status: int, body: bytes) -> None:
    text = body.decode(errors="replace")
    assert status == 200 and "<Content>" in text, f"{status}: {text[:200]}"


async def _serial(port: int, requests_: list[bytes]) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for raw in requests_:
        started = time.perf_counter()
        writer.write(raw)
        _check(*await _answer(reader))
        times.append((time.perf_counter() - started) * 1000)
    writer.close()
    return times


async def _burst(port: int, requests_: list[bytes]) -> list[float]:
    """Every connection open first; then every request written at once, each answer timed."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in requests_]
    await asyncio.sleep(0.5)  # let the server settle after accepting
    started = time.perf_counter()
    for (_, writer), raw in zip(connections, requests_, strict=True):
        writer.write(raw)

    async def one(reader: asyncio.StreamReader) -> float:
        _check(*await _answer(reader))
        return (time.perf_counter() - started) * 1000

    times = await asyncio.gather(*(one(reader) for reader, _ in connections))
    for _, writer in connections:
        writer.close()
    return list(times)


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


@dataclasses.dataclass
class Server:
    process: subprocess.Popen  # type: ignore[type-arg]
    port: int
    workers: list[int]

    def cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in self.workers)


# Development settings that would undo the production ones if passed on.
NOT_PASSED = {"extra", "ENV_NAME", "DEMO_MODE", "PROXY_HOPS", "SOCKETIO_ASYNC_MODE"}


def start_server(app, workers: int, log: Path) -> Server:  # type: ignore[no-untyped-def]
    """gunicorn (gevent, deploy/gunicorn.conf.py) with `workers` processes over the same
    database and stubs as `app`, configured through the environment as a deployment is."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = app.config["BK_CONFIG"]
    env = {**os.environ, "BK_ENV": "production", "FLASK_APP": "wsgi"}
    for name in dataclasses.asdict(config):
        value = getattr(config, name)
        if name not in NOT_PASSED and value is not None:
            env[name] = str(value)
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    for name in ("SECRET_KEY", "CREDENTIALS_KEYS", "HLS_SIGNING_KEY"):
        env[name] = app.config[name]
    env.update(BK_BIND=f"127.0.0.1:{port}", BK_WORKER_CONNECTIONS="2000")
    env.pop("REDIS_URL", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "-w", str(workers), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    deadline = time.monotonic() + 20
    while len(children_of(process.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return Server(process, port, children_of(process.pid))


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def measure_callbacks(app, openid: str, workers: int, messages: int, log: Path) -> dict:  # type: ignore[no-untyped-def, type-arg]
    server = start_server(app, workers, log)
    try:
        host = f"127.0.0.1:{server.port}"
        asyncio.run(_serial(server.port, signed_requests(host, openid, 20)))  # warm up
        serial = asyncio.run(_serial(server.port, signed_requests(host, openid, 50)))
        burst = signed_requests(host, openid, messages)
        cpu_before = server.cpu_s()
        latencies = asyncio.run(_burst(server.port, burst))
        cpu_ms = (server.cpu_s() - cpu_before) * 1000 / messages
    finally:
        stop_server(server)
    return {
        "workers": workers,
        "serial_p50_ms": round(statistics.median(serial), 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "server_cpu_ms_per_callback": round(cpu_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="gunicorn process counts to measure")
    parser.add_argument("--notices", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]

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
        try:
            rows = [
                measure_callbacks(app, openid, n, args.messages, Path(tmp) / "gunicorn.log")
                for n in worker_counts
            ]
            consumer = start_embedded_consumer(app)
            try:
                notify_s = notify(app, wecom, inspector_id, centre_id, args.notices)
            finally:
                consumer.stop(graceful=False)
        finally:
            app.extensions["bk_chat"].close()
            for stub in (wechat, wecom, *others):
                stub.stop()
    best = min(rows, key=lambda r: r["p99_ms"])
    result = {
        "database": "postgresql"
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        else "sqlite",
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "messages": args.messages,
        "callback_p50_ms": best["p50_ms"],
        "callback_p99_ms": best["p99_ms"],
        "callback_workers": best["workers"],
        "callback_runs": rows,
        "notices": args.notices,
        "notify_p50_s": round(statistics.median(notify_s), 3),
        "notify_p95_s": round(percentile(notify_s, 95), 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.messages} signed callbacks at once ({result['database']}, {result['cpus']} CPUs)")
    header = (
        "processes",
        "alone p50",
        "burst p50",
        "burst p99",
        "max",
        "CPU/callback",
        "p99/alone",
    )
    print("".join(f"{h:>14}" for h in header))
    for r in rows:
        cells = (
            r["workers"],
            f"{r['serial_p50_ms']} ms",
            f"{r['p50_ms']} ms",
            f"{r['p99_ms']} ms",
            f"{r['max_ms']} ms",
            f"{r['server_cpu_ms_per_callback']} ms",
            f"{r['p99_ms'] / r['serial_p50_ms']:.0f}×",
        )
        print("".join(f"{c:>14}" for c in cells))
    print(f"notice issued → robot p50 {result['notify_p50_s']} s, p95 {result['notify_p95_s']} s")
    print(f"load average at the end: {result['load_average']}")


if __name__ == "__main__":
    main()
