"""Realtime benchmark (not a test): one event fanned out to N Socket.IO clients, and the memory
each connection costs, on the production web server.

    .venv/bin/python bench/realtime.py [--clients 1000] [--procs 4] [--repeats 5] [--json]

Run from the repository root. Everything is real: a throwaway instance folder with a SQLite
database migrated by Alembic, one centre with one operator and one inspector (tests/factories.py),
and the production web server — gunicorn with the gevent worker from deploy/gunicorn.conf.py,
`BK_ENV=production`, one process, no Redis — on a free port.

The clients are python-socketio's own threaded client over the WebSocket transport, connected
to namespace /live with the operator's access token (so they all sit in the centre's staff
room). They run in `--procs` client processes started from this script (`--worker`), so the
load generator does not share one GIL; connects are staggered. Each client records
`time.time()` when the event reaches its handler.

The event is a real one: the inspector drafts a notice through the HTTP API (not timed), then
issues it (`POST /api/v1/inspector/notices/<id>/issue`); the notice service publishes
`notice.issued` after commit and the realtime relay emits it to the staff room. The clock
starts just before the issue request is sent.

Phases, in this order, on the same server:

1. Baseline: one client connected (in its own client process), `--repeats` events; latency
   from sending the issue request to the event's arrival. Server RSS with no client connected.
2. Fan-out: N clients connected; server RSS again → MiB per connection. `--repeats` events;
   for each, the time until every client has it (the last arrival), p50 and p95 of the
   arrivals. Medians over the repeats are reported.

The server's CPU time per event (utime+stime from /proc, in 10 ms ticks) is shown too. On a small
machine the clients run on the same cores as the server: the figures include that competition.

The headline is `fanout_<N>_s` for the N asked for (`fanout_1000_s` by default), always present,
with `fanout_<N>_connected` beside it. It is null, and the run exits with status 1 saying why,
unless all N clients connected and every one received every event: a figure for fewer clients
is not the figure for N (the measured value for those who did connect stays in `fanout_s`).

Whatever happens (errors, Ctrl-C, SIGTERM), every process started here is stopped by PID and the
temporary folder is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procstat import children_of, cpu_s, pid_alive  # noqa: E402 - bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "/live"
EVENT = "notice.issued"
TARGET_FANOUT_S = 1.0
NPROC = os.cpu_count() or 1


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# ------------------------------------------------------------------------------ client worker


def worker_main(url: str, token: str, count: int, delay: float, stagger: float) -> None:
    """One client process: connect `count` clients, then answer commands on stdin (one JSON
    object a line) with one JSON line each. Exits on `quit` or when stdin closes."""
    import socketio  # only the client side needs it

    die_with_parent()

    arrivals: dict[Any, list[float]] = {}
    cond = threading.Condition()
    clients: list[socketio.Client] = []
    errors: list[str] = []

    def on_event(data: dict) -> None:
        arrived = time.time()
        with cond:
            arrivals.setdefault(data.get("notice_id"), []).append(arrived)
            cond.notify_all()

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def connected() -> int:
        return sum(1 for c in clients if c.connected and NAMESPACE in c.namespaces)

    time.sleep(delay)
    started = time.monotonic()
    for _ in range(count):
        client = socketio.Client(reconnection=False, handle_sigint=False)
        client.on(EVENT, on_event, namespace=NAMESPACE)
        try:
            client.connect(
                url,
                namespaces=[NAMESPACE],
                auth={"token": token},
                transports=["websocket"],
                wait_timeout=30,
            )
            clients.append(client)
        except Exception as exc:  # reported; the run goes on with the others
            errors.append(f"{type(exc).__name__}: {exc}")
        if stagger:
            time.sleep(stagger)
    reply(
        {
            "ready": True,
            "connected": connected(),
            "failed": len(errors),
            "errors": errors[:3],
            "connect_s": time.monotonic() - started,
        }
    )

    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "wait":
            key, expected = command["notice_id"], connected()
            deadline = time.monotonic() + command["timeout"]
            with cond:
                while len(arrivals.get(key, ())) < expected:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                got = list(arrivals.get(key, ()))
            reply({"arrivals": got, "expected": expected, "missing": max(0, expected - len(got))})
        elif command["cmd"] == "status":
            reply({"connected": connected()})
        elif command["cmd"] == "quit":
            break
    deadline = time.monotonic() + 15
    for client in clients:
        if time.monotonic() > deadline:
            break
        with contextlib.suppress(Exception):
            client.disconnect()
    reply({"bye": True})
    sys.stdout.flush()
    os._exit(0)  # do not wait for client threads still shutting down


# ----------------------------------------------------------------------- processes we started


def die_with_parent() -> None:
    """Have the kernel SIGTERM this process when the bench dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# gunicorn is exec'd by this one-liner so that it, too, dies with the bench (same PID).
EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@dataclass
class Started:
    procs: list[subprocess.Popen] = field(default_factory=list)
    extra_pids: set[int] = field(default_factory=set)  # gunicorn's workers


STARTED = Started()


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    proc = subprocess.Popen(args, start_new_session=True, cwd=ROOT, **kwargs)
    STARTED.procs.append(proc)
    return proc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cleanup() -> None:
    """Stop every process started here, by PID: client workers first, then gunicorn."""
    for proc in STARTED.procs:
        if proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.write(b'{"cmd": "quit"}\n')
                proc.stdin.flush()
    for proc in STARTED.procs:
        if proc.poll() is None and proc.stdin is None:  # gunicorn: let the clients go first
            continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    for proc in STARTED.procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 25
    for proc in STARTED.procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    for pid in STARTED.extra_pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for proc in STARTED.procs:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
    left = [p.pid for p in STARTED.procs if p.poll() is None]
    left += [pid for pid in STARTED.extra_pids if pid_alive(pid)]
    if left:
        note(f"WARNING: still running after cleanup: {left}")


class ClientWorker:
    """A `--worker` subprocess and a thread reading its JSON replies."""

    def __init__(self, url: str, token: str, count: int, delay: float, stagger: float) -> None:
        self.count = count
        self.proc = popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--url",
                url,
                "--count",
                str(count),
                "--delay",
                str(delay),
                "--stagger",
                str(stagger),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "BK_BENCH_TOKEN": token},  # not on the command line
        )
        self.replies: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.replies.put(json.loads(line))
        self.replies.put(None)

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict:
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"client worker {self.proc.pid} did not answer") from None
        if reply is None:
            raise RuntimeError(f"client worker {self.proc.pid} exited ({self.proc.poll()})")
        return reply

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.send(cmd="quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_clients(
    url: str, token: str, n: int, procs: int, stagger: float, timeout: float
) -> tuple[list[ClientWorker], dict]:
    procs = max(1, min(procs, n))
    counts = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    started = time.monotonic()
    workers = [
        ClientWorker(url, token, c, delay=i * 0.05, stagger=stagger) for i, c in enumerate(counts)
    ]
    summary = {"connected": 0, "failed": 0, "errors": []}
    for worker in workers:
        ready = worker.receive(timeout)
        summary["connected"] += ready["connected"]
        summary["failed"] += ready["failed"]
        summary["errors"] += ready["errors"]
    summary["connect_s"] = time.monotonic() - started
    return workers, summary


def stop_clients(workers: list[ClientWorker]) -> None:
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.send(cmd="quit")
    for worker in workers:
        worker.quit()


# ------------------------------------------------------------------------------ app and server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(instance: Path, findings: int) -> dict:
    """Migrate a fresh SQLite database and create one centre, its operator, an inspector of
    its agency and `findings` findings (one per notice the run will issue)."""
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models import Finding, FindingCategory, Severity
    from config import TestingConfig
    from tests import factories as f

    config = TestingConfig(
        INSTANCE_PATH=str(instance), DATABASE_URL=None, HLS_ROOT=str(instance / "hls")
    )
    app = create_app(config)
    with app.app_context():
        upgrade()
        meilan = f.district()
        agency = f.agency(meilan)
        centre = f.centre(meilan, "阳光小树苗托管中心")
        inspector = f.inspector_of(agency)
        operator = f.operator_of(centre)
        rows = [
            Finding(
                centre_id=centre.id,
                category=FindingCategory.PESTS,
                severity=Severity.I,
                description=f"发现蟑螂（基准 {i}）",
            )
            for i in range(findings)
        ]
        db.session.add_all(rows)
        db.session.commit()
        facts = {
            "centre_id": centre.id,
            "operator": operator.username,
            "inspector": inspector.username,
            "finding_ids": [row.id for row in rows],
            "password": f.PASSWORD,
            "secret_key": config.SECRET_KEY,
            "credentials_keys": config.CREDENTIALS_KEYS,
        }
        db.session.remove()
        db.engine.dispose()
    return facts


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path
    worker_pids: list[int]

    def rss(self) -> dict[str, float]:
        workers = sum(rss_mib(pid) for pid in self.worker_pids)
        return {"workers": workers, "master": rss_mib(self.proc.pid)}

    def cpu(self) -> float:
        return sum(cpu_s(pid) for pid in self.worker_pids)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(instance: Path, facts: dict, connections: int) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "BK_ENV": "production",
        "SECRET_KEY": facts["secret_key"],
        "CREDENTIALS_KEYS": facts["credentials_keys"],
        "HLS_SIGNING_KEY": "bench-realtime-hls-key",
        "DATABASE_URL": f"sqlite:///{instance}/bright_kitchen.sqlite3",
        "INSTANCE_PATH": str(instance),
        "HLS_ROOT": str(instance / "hls"),
        "BK_BIND": f"127.0.0.1:{port}",
        "BK_WORKER_CONNECTIONS": str(max(2000, connections + 200)),
    }
    env.pop("REDIS_URL", None)
    log = instance / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("wb") as out:
        proc = popen(
            [sys.executable, "-c", EXEC_DYING_WITH_PARENT, str(gunicorn)]
            + ["-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    server = Server(proc, url, log, [])
    import requests

    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/healthz", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{server.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start:\n{server.log_tail()}")
        time.sleep(0.2)
    server.worker_pids = children_of(proc.pid)
    STARTED.extra_pids.update(server.worker_pids)
    if not server.worker_pids:
        raise RuntimeError("gunicorn has no worker process")
    return server


class Api:
    def __init__(self, url: str, facts: dict) -> None:
        import requests

        self.requests = requests
        self.url = url
        self.facts = facts
        self.findings = iter(facts["finding_ids"])

    def login(self, username: str) -> str:
        response = self.requests.post(
            self.url + "/api/v1/auth/login",
            json={"username": username, "password": self.facts["password"]},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def draft(self, token: str) -> int:
        response = self.requests.post(
            self.url + "/api/v1/inspector/notices",
            json={
                "centre_id": self.facts["centre_id"],
                "finding_ids": [next(self.findings)],
                "requirements": "立即灭虫，清理后厨",
                "working_days": 1,
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(f"draft refused: {response.status_code} {response.text[:300]}")
        return response.json()["id"]

    def issue(self, token: str, notice_id: int) -> float:
        """Issue the notice; returns the wall-clock time the request was sent."""
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{self.url}/api/v1/inspector/notices/{notice_id}/issue"
        sent = time.time()
        response = self.requests.post(url, headers=headers, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"issue refused: {response.status_code} {response.text[:300]}")
        return sent


# ------------------------------------------------------------------------------------ phases


def cause_and_collect(
    api: Api, server: Server, workers: list[ClientWorker], timeout: float, settle: float
) -> dict:
    """One event: draft (untimed), issue, and wait until every connected client has it."""
    token = api.login(api.facts["inspector"])
    notice_id = api.draft(token)
    time.sleep(settle)
    cpu_before = server.cpu()
    sent = api.issue(token, notice_id)
    http_s = time.time() - sent
    for worker in workers:
        worker.send(cmd="wait", notice_id=notice_id, timeout=timeout)
    arrivals: list[float] = []
    expected = missing = 0
    for worker in workers:
        reply = worker.receive(timeout + 30)
        arrivals += reply["arrivals"]
        expected += reply["expected"]
        missing += reply["missing"]
    cpu = server.cpu() - cpu_before
    latencies = sorted(a - sent for a in arrivals)
    return {
        "notice_id": notice_id,
        "expected": expected,
        "received": len(latencies),
        "missing": missing,
        "http_s": http_s,
        "server_cpu_s": cpu,
        "first_s": latencies[0] if latencies else None,
        "p50_s": percentile(latencies, 50) if latencies else None,
        "p95_s": percentile(latencies, 95) if latencies else None,
        "all_s": latencies[-1] if latencies and not missing else None,
        "last_s": latencies[-1] if latencies else None,
    }


def median_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s[key] is not None]
    return statistics.median(values) if values else None


def run_events(
    api: Api,
    server: Server,
    workers: list[ClientWorker],
    repeats: int,
    warmup: int,
    timeout: float,
    settle: float,
    label: str,
) -> list[dict]:
    samples = []
    for i in range(warmup + repeats):
        sample = cause_and_collect(api, server, workers, timeout, settle)
        kind = "warm-up" if i < warmup else f"{i - warmup + 1}/{repeats}"
        all_s = "—" if sample["all_s"] is None else f"{sample['all_s'] * 1000:.1f} ms"
        note(
            f"{label} {kind}: all {all_s}, p50 "
            f"{(sample['p50_s'] or 0) * 1000:.1f} ms, received {sample['received']}"
            f"/{sample['expected']}, HTTP {sample['http_s'] * 1000:.1f} ms, "
            f"server CPU {sample['server_cpu_s'] * 1000:.0f} ms"
        )
        if i >= warmup:
            samples.append(sample)
    return samples


def bench(args: argparse.Namespace) -> dict:
    n = args.clients
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bk-bench-realtime-"))
    try:
        note(f"preparing a migrated database in {tmp}")
        events = 2 * (args.repeats + args.warmup) + 2
        facts = prepare_database(tmp, events)
        note("starting gunicorn (gevent worker, BK_ENV=production)")
        server = start_server(tmp, facts, n)
        api = Api(server.url, facts)
        operator_token = api.login(facts["operator"])
        note(f"server {server.url}, master {server.proc.pid}, workers {server.worker_pids}")

        # Phase 1: one client.
        one, one_summary = start_clients(server.url, operator_token, 1, 1, 0.0, 60)
        if one_summary["connected"] != 1:
            raise RuntimeError(f"the baseline client could not connect: {one_summary}")
        baseline = run_events(
            api, server, one, args.repeats, args.warmup, args.timeout, args.settle, "baseline"
        )
        stop_clients(one)
        time.sleep(2.0)
        rss_before = server.rss()
        note(f"server worker RSS with no client: {rss_before['workers']:.1f} MiB")

        # Phase 2: N clients.
        note(f"connecting {n} clients from {min(args.procs, n)} processes")
        operator_token = api.login(facts["operator"])
        workers, summary = start_clients(
            server.url, operator_token, n, args.procs, args.stagger, args.connect_timeout
        )
        note(
            f"connected {summary['connected']}/{n} in {summary['connect_s']:.1f} s"
            + (f"; failures: {summary['errors']}" if summary["failed"] else "")
        )
        time.sleep(3.0)
        rss_after = server.rss()
        connected = summary["connected"]
        fanout = run_events(
            api, server, workers, args.repeats, args.warmup, args.timeout, args.settle, "fan-out"
        )
        rss_after_events = server.rss()
        still = 0
        for worker in workers:
            worker.send(cmd="status")
        for worker in workers:
            still += worker.receive(30)["connected"]
        stop_clients(workers)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    per_conn = (rss_after["workers"] - rss_before["workers"]) / connected if connected else None
    fan_all = median_of(fanout, "all_s")
    base_all = median_of(baseline, "all_s")
    any_missing = any(s["missing"] for s in fanout)
    # The figure is "an event to N clients" only if all N connected and every one got every
    # event; otherwise the key is still there (null), with what went wrong beside it.
    complete = connected == n and not any_missing
    return {
        "clients_requested": n,
        "clients": connected,
        "client_processes": min(args.procs, n),
        f"fanout_{n}_s": fan_all if complete else None,
        f"fanout_{n}_connected": connected,
        "complete": complete,
        "fanout_s": None if any_missing else fan_all,
        "fanout_p50_s": median_of(fanout, "p50_s"),
        "fanout_p95_s": median_of(fanout, "p95_s"),
        "fanout_first_s": median_of(fanout, "first_s"),
        "fanout_max_s": max((s["last_s"] or 0) for s in fanout) if fanout else None,
        "fanout_missing_total": sum(s["missing"] for s in fanout),
        "fanout_http_s": median_of(fanout, "http_s"),
        "fanout_server_cpu_s": median_of(fanout, "server_cpu_s"),
        "fanout_samples_s": [s["all_s"] for s in fanout],
        "baseline_1_s": base_all,
        "baseline_samples_s": [s["all_s"] for s in baseline],
        "baseline_http_s": median_of(baseline, "http_s"),
        "baseline_server_cpu_s": median_of(baseline, "server_cpu_s"),
        "fanout_vs_baseline": fan_all / base_all if fan_all and base_all else None,
        "target_fanout_s": TARGET_FANOUT_S,
        "meets_target": bool(complete and fan_all is not None and fan_all <= 1.0),
        "mib_per_connection": per_conn,
        "server_rss_baseline_mib": rss_before["workers"],
        "server_rss_connected_mib": rss_after["workers"],
        "server_rss_after_events_mib": rss_after_events["workers"],
        "server_master_rss_mib": rss_before["master"],
        "connect_s": summary["connect_s"],
        "connect_failures": summary["failed"],
        "connect_errors": summary["errors"][:3],
        "still_connected_at_end": still,
        "repeats": args.repeats,
        "machine": {
            "nproc": NPROC,
            "mem_total_mib": mem_total_mib(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
    }


def mem_total_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f} ms"


def incomplete_reasons(r: dict) -> list[str]:
    """Why the run does not measure an event to every requested client (empty: it does)."""
    reasons = []
    if r["clients"] < r["clients_requested"]:
        reasons.append(
            f"only {r['clients']} of {r['clients_requested']} clients connected "
            f"({r['connect_failures']} failed: {r['connect_errors']})"
        )
    if r["fanout_missing_total"]:
        reasons.append(f"{r['fanout_missing_total']} events missed by connected clients")
    return reasons


def print_table(r: dict) -> None:
    m = r["machine"]
    n = r["clients"]
    print(
        f"Realtime fan-out — gunicorn + gevent (1 worker), BK_ENV=production, SQLite; "
        f"{n} clients over WebSocket from {r['client_processes']} client processes; "
        f"median of {r['repeats']} events"
    )
    print(
        f"machine: {m['nproc']} cores, {m['mem_total_mib']} MiB RAM, Python {m['python']}, "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    print()
    rows = [
        ("", "baseline (1 client)", f"fan-out ({n} clients)"),
        ("event to every client", ms(r["baseline_1_s"]), ms(r["fanout_s"])),
        ("  p50 arrival", ms(r["baseline_1_s"]), ms(r["fanout_p50_s"])),
        ("  p95 arrival", ms(r["baseline_1_s"]), ms(r["fanout_p95_s"])),
        ("  first arrival", ms(r["baseline_1_s"]), ms(r["fanout_first_s"])),
        ("  worst of the runs", ms(max(filter(None, r["baseline_samples_s"]), default=None)),
         ms(r["fanout_max_s"])),
        ("issue request (HTTP)", ms(r["baseline_http_s"]), ms(r["fanout_http_s"])),
        ("server CPU per event (10 ms ticks)", ms(r["baseline_server_cpu_s"]),
         ms(r["fanout_server_cpu_s"])),
        ("server worker RSS", f"{r['server_rss_baseline_mib']:.1f} MiB",
         f"{r['server_rss_connected_mib']:.1f} MiB"),
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}")
    print()
    ratio = r["fanout_vs_baseline"]
    per = r["mib_per_connection"]
    requested = r["clients_requested"]
    print(
        f"fanout_{requested}_s: {ms(r[f'fanout_{requested}_s'])} "
        f"({r[f'fanout_{requested}_connected']}/{requested} connected)"
    )
    print(
        f"fan-out to {n}: {ms(r['fanout_s'])} (target ≤ {r['target_fanout_s']:.0f} s: "
        f"{'met' if r['meets_target'] else 'NOT met'}); "
        f"{'—' if ratio is None else f'{ratio:.1f}'}× the one-client baseline"
    )
    print(
        f"memory per connection: {'—' if per is None else f'{per * 1024:.1f} KiB'} "
        f"({'—' if per is None else f'{per:.4f}'} MiB; worker RSS "
        f"{r['server_rss_baseline_mib']:.1f} → {r['server_rss_connected_mib']:.1f} MiB, "
        f"{r['server_rss_after_events_mib']:.1f} MiB after the events)"
    )
    print(
        f"connect: {n}/{r['clients_requested']} in {r['connect_s']:.1f} s, "
        f"{r['connect_failures']} failed; still connected at the end: "
        f"{r['still_connected_at_end']}; events missed: {r['fanout_missing_total']}"
    )
    print(
        f"samples (s): baseline {[round(x, 4) if x else x for x in r['baseline_samples_s']]}, "
        f"fan-out {[round(x, 4) if x else x for x in r['fanout_samples_s']]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--repeats", type=int, default=5, help="measured events per phase")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured events per phase")
    parser.add_argument("--stagger", type=float, default=0.002, help="s between connects")
    parser.add_argument("--settle", type=float, default=1.0, help="s of quiet before an event")
    parser.add_argument("--timeout", type=float, default=30.0, help="s to wait for an event")
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # The client processes this script starts.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.url, os.environ["BK_BENCH_TOKEN"], args.count, args.delay, args.stagger)
        return
    if args.clients < 1:
        parser.error("--clients must be at least 1")

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    result = bench(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)
    reasons = incomplete_reasons(result)
    if reasons:
        note(f"FAILED: no fan-out figure for {args.clients} clients: " + "; ".join(reasons))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
