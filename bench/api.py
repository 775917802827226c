"""API latency benchmark (not a test): p50/p99 of the parent's home and the inspector's
dashboard under 200 concurrent clients, on SQLite and on PostgreSQL in one run.

    .venv/bin/python bench/api.py --pg-url postgresql+psycopg://bk:bk@127.0.0.1:5432/bk_test_b
        [--connections 200] [--duration 15] [--warmup 3] [--json]

Run from the repository root. `--pg-url` (or `BENCH_PG_URL`) names a PostgreSQL database whose
`public` schema is DROPPED and rebuilt: never point it at a database you need. Without it only
SQLite is measured.

For each database, everything is real and the same:

1. A fresh database (SQLite: a throwaway file; PostgreSQL: the schema dropped), migrated with
   `flask db upgrade` in the production configuration, as a deployment does.
2. Seeded through tests/factories.py plus direct rows for the records (a fixed random seed):
   a city with four districts and their market-regulation and education bureaus; 200 centres
   across every lifecycle state with four rooms, a camera in each and meal windows; 2,000
   parents linked to one or two centres; an operator per centre; 14 inspectors in city and
   district bureaus; 600 patrols with ~570 findings (half with a snapshot); 300 notices across
   every state; 200 concerns across every state; scheduled snapshots today.
3. The production web server in its own process: gunicorn with the gevent worker and
   deploy/gunicorn.conf.py, `BK_ENV=production`, the secrets it requires, no Redis, on a
   free port.
4. Access tokens minted by the auth service (`issue_access_token`) for 200 distinct parents and
   every inspector. Each target is fetched once first and must answer 2xx with non-empty data.
5. Each row: the load generator — a separate process, an asyncio HTTP/1.1 client on raw
   keep-alive connections — opens `--connections` connections; connection n is one client and
   always sends the same request (parent n's token, and their own centre's page; the
   inspectors' tokens in turn), the next one as soon as the previous answer is read (closed
   loop). `--warmup` s unmeasured, then `--duration` s measured; a request sent before the end
   is waited for and measured however long it takes (up to 120 s), so the slowest requests are
   not left out of the percentiles. Every non-2xx answer, connection error and request left
   unanswered is counted as an error.

Rows, on the same server, in this order:

- `GET /healthz` (database ping, no authentication) — for reference;
- `GET /api/v1/auth/me` with the parents' tokens — the baseline: token check and user load,
  what every authenticated call pays; ratios are to this row of the same database;
- the parent's home (app/web/static/js/pages/parent.js): `GET /api/v1/parent/centres` (my
  centres) and `GET /api/v1/parent/centres/<id>` (the centre page it opens);
- the inspector's dashboard (pages/dashboard.js): `GET /api/v1/dashboard` and
  `GET /api/v1/notices?open=true` (the "to review" list), with the inspectors' tokens.

Also shown: the server worker's CPU per request (utime+stime from /proc over the row, warm-up
included, divided by every request answered) and the SQL statements one request runs (counted
in this process on the same database, the average over up to 20 of the row's targets). The
load average is printed at the start and the end.

Whatever happens (errors, Ctrl-C, SIGTERM), every process started here (gunicorn, the load
generator, flask) is stopped by its PID and the temporary folder is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from procstat import children_of, cpu_s, pid_alive  # noqa: E402 - bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's packages first, whatever else the interpreter's path holds.
sys.path.insert(0, str(ROOT))
NPROC = os.cpu_count() or 1
DISTRICTS = ("美兰区", "龙华区", "秀英区", "琼山区")


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- processes we started


def _die_with_parent() -> None:
    """In a child before it execs: the kernel SIGTERMs it when the bench dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Started:
    procs: list[subprocess.Popen] = field(default_factory=list)
    extra_pids: set[int] = field(default_factory=set)  # gunicorn's workers


STARTED = Started()


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    proc = subprocess.Popen(
        args, start_new_session=True, cwd=ROOT, preexec_fn=_die_with_parent, **kwargs
    )
    STARTED.procs.append(proc)
    return proc


def run_to_end(args: list[str], timeout: float, **kwargs: Any) -> tuple[int, str]:
    """Run a child to completion (stdout and stderr together); stopped by PID on timeout."""
    proc = popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError(f"{args[0]} did not finish within {timeout:.0f} s") from None
    finally:
        STARTED.procs.remove(proc)
    return proc.returncode, out


def stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def cleanup() -> None:
    """Stop every process started here, by PID."""
    for proc in list(STARTED.procs):
        with contextlib.suppress(Exception):
            stop(proc)
    for pid in STARTED.extra_pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    left = [p.pid for p in STARTED.procs if p.poll() is None]
    left += [pid for pid in STARTED.extra_pids if pid_alive(pid)]
    if left:
        note(f"WARNING: still running after cleanup: {left}")
    STARTED.procs.clear()
    STARTED.extra_pids.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ the data


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class Secrets:
    """Fresh production secrets for each database's server."""

    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    credentials_keys: str = field(default_factory=_fernet_key)
    hls_signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))


@dataclass
class Target:
    path: str
    token: str | None  # "Bearer …" or None


@dataclass
class Seeded:
    counts: dict[str, int]
    parents: list[Target]  # /auth/me, one per benchmarked parent
    my_centres: list[Target]
    centre_pages: list[Target]
    dashboards: list[Target]
    open_notices: list[Target]


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def seed_config(instance: Path, url: str, keys: Secrets):  # type: ignore[no-untyped-def]
    """The configuration this process uses on the benchmark database: seeding, minting tokens
    and counting statements."""
    from config import TestingConfig

    return TestingConfig(
        INSTANCE_PATH=str(instance),
        DATABASE_URL=url,
        HLS_ROOT=str(instance / "hls"),
        SECRET_KEY=keys.secret_key,
        CREDENTIALS_KEYS=keys.credentials_keys,
        HLS_SIGNING_KEY=keys.hls_signing_key,
        # Minted tokens must outlive the run (the server checks only the signature and `exp`).
        ACCESS_TOKEN_TTL_S=3 * 3600,
    )


def seed(app, n_centres: int, n_parents: int, clients: int) -> Seeded:  # type: ignore[no-untyped-def]
    from datetime import time as clock

    from app.extensions import db
    from app.models import (
        AgencyKind,
        CameraStatus,
        CentreStatus,
        Concern,
        ConcernStatus,
        Finding,
        FindingCategory,
        MealWindow,
        NoticeCounter,
        NoticeStatus,
        Patrol,
        PatrolMode,
        RectificationNotice,
        ReviewMode,
        Severity,
        Snapshot,
        SnapshotReason,
        utcnow,
    )
    from app.services.auth import issue_access_token
    from app.services.centres import CENTRE_TZ
    from tests import factories as f

    rng = random.Random(20260)
    now = utcnow()
    today = now.astimezone(CENTRE_TZ).date()
    local_midnight = datetime.combine(today, datetime.min.time(), CENTRE_TZ)

    with app.app_context():
        city = f.district("海口市")
        districts = [f.district(name, parent=city) for name in DISTRICTS]
        agencies = {
            (None, AgencyKind.MARKET_REGULATION): f.agency(
                city, AgencyKind.MARKET_REGULATION, "海口市监整"
            ),
            (None, AgencyKind.EDUCATION): f.agency(city, AgencyKind.EDUCATION, "海口教整"),
        }
        for d in districts:
            short = d.name[:2]
            agencies[(d.id, AgencyKind.MARKET_REGULATION)] = f.agency(
                d, AgencyKind.MARKET_REGULATION, f"{short}市监整"
            )
            agencies[(d.id, AgencyKind.EDUCATION)] = f.agency(
                d, AgencyKind.EDUCATION, f"{short}教整"
            )
        # 2 market-regulation + 1 education inspector per district, 2 in the city bureau.
        inspectors: dict[int | None, list] = {None: []}
        for d in districts:
            inspectors[d.id] = [
                f.inspector_of(agencies[(d.id, AgencyKind.MARKET_REGULATION)]),
                f.inspector_of(agencies[(d.id, AgencyKind.MARKET_REGULATION)]),
                f.inspector_of(agencies[(d.id, AgencyKind.EDUCATION)]),
            ]
        inspectors[None] = [
            f.inspector_of(agencies[(None, AgencyKind.MARKET_REGULATION)]) for _ in range(2)
        ]

        statuses = (
            [CentreStatus.LIVE] * 80
            + [CentreStatus.SUSPENDED] * 5
            + [CentreStatus.COMMISSIONING] * 6
            + [CentreStatus.INSTALLING] * 5
            + [CentreStatus.INVITED] * 4
        )
        camera_states = (
            [CameraStatus.ONLINE] * 85
            + [CameraStatus.OFFLINE] * 8
            + [CameraStatus.STALLED] * 3
            + [CameraStatus.TAMPERED] * 1
            + [CameraStatus.UNKNOWN] * 3
        )
        centres, cameras_of = [], {}
        for i in range(n_centres):
            d = districts[i % len(districts)]
            status = rng.choice(statuses)
            c = f.centre(d, f"{d.name}阳光托管中心{i + 1:03d}", status=status)
            c.address = f"海口市{d.name}示范路 {i + 1} 号"
            if status is CentreStatus.SUSPENDED:
                c.suspension_reason = "整改期间暂停直播"
            if i % 3 == 0:
                db.session.add(
                    MealWindow(
                        centre_id=c.id,
                        label="点心",
                        starts_at=clock(15, 30),
                        ends_at=clock(16, 0),
                    )
                )
            cameras_of[c.id] = []
            if status is not CentreStatus.INVITED:
                for area in c.areas:
                    cam = f.camera(c, area.kind)
                    cam.status = rng.choice(camera_states)
                    cameras_of[c.id].append(cam)
            f.operator_of(c)
            centres.append(c)
        db.session.flush()

        parents = []
        for i in range(n_parents):
            linked = rng.sample(centres, 2 if rng.random() < 0.3 else 1)
            p = f.parent_of(*linked, display_name=f"家长{i + 1}")
            parents.append((p, linked))

        # Patrols, findings (half with a snapshot), by inspectors whose jurisdiction covers it.
        watched = [c for c in centres if cameras_of[c.id]]
        findings_of: dict[int, list] = {}
        counts = {"patrols": 0, "findings": 0, "snapshots": 0, "notices": 0, "concerns": 0}
        for i in range(600):
            c = rng.choice(watched)
            by = rng.choice(inspectors[c.district_id] + inspectors[None])
            started = now - timedelta(days=rng.uniform(0, 90))
            ended = None if i % 100 == 0 else started + timedelta(minutes=rng.randint(8, 40))
            patrol = Patrol(
                centre_id=c.id,
                inspector_id=by.id,
                mode=rng.choice(list(PatrolMode)),
                started_at=started,
                ended_at=ended,
                summary="巡查结束" if ended else "",
            )
            db.session.add(patrol)
            db.session.flush()
            counts["patrols"] += 1
            for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
                cam = rng.choice(cameras_of[c.id])
                finding = Finding(
                    centre_id=c.id,
                    patrol_id=patrol.id,
                    area_id=cam.area_id,
                    category=rng.choice(list(FindingCategory)),
                    severity=rng.choice(list(Severity)),
                    description=rng.choice(
                        ["操作台面有积水", "生熟食品未分开存放", "从业人员未戴口罩", "发现蟑螂"]
                    ),
                    recorded_by_id=by.id,
                    recorded_at=started + timedelta(minutes=5),
                )
                if rng.random() < 0.5:
                    finding.snapshots.append(
                        Snapshot(
                            camera_id=cam.id,
                            taken_at=started + timedelta(minutes=4),
                            path=f"snapshots/{cam.id}/{secrets.token_hex(8)}.jpg",
                            sha256=secrets.token_hex(32),
                            size_bytes=180_000,
                            width=1280,
                            height=720,
                            reason=SnapshotReason.PATROL,
                            taken_by_id=by.id,
                            patrol_id=patrol.id,
                        )
                    )
                    counts["snapshots"] += 1
                db.session.add(finding)
                findings_of.setdefault(c.id, []).append((finding, by))
                counts["findings"] += 1
        db.session.flush()

        # Scheduled snapshots today (what the parent's page lists), a few per camera.
        elapsed = max(60.0, (now - local_midnight).total_seconds())
        for c in watched:
            if c.status is not CentreStatus.LIVE:
                continue
            for cam in cameras_of[c.id]:
                for _ in range(3):
                    db.session.add(
                        Snapshot(
                            camera_id=cam.id,
                            taken_at=local_midnight + timedelta(seconds=rng.uniform(0, elapsed)),
                            path=f"snapshots/{cam.id}/{secrets.token_hex(8)}.jpg",
                            sha256=secrets.token_hex(32),
                            size_bytes=150_000,
                            width=1280,
                            height=720,
                            reason=SnapshotReason.SCHEDULE,
                        )
                    )
                    counts["snapshots"] += 1
        db.session.flush()

        # Notices over those findings, in every state, numbered per agency and year.
        notice_states = (
            [NoticeStatus.ISSUED] * 14
            + [NoticeStatus.ACKNOWLEDGED] * 12
            + [NoticeStatus.RESPONDED] * 12
            + [NoticeStatus.RETURNED] * 5
            + [NoticeStatus.VERIFIED] * 35
            + [NoticeStatus.OVERDUE] * 8
            + [NoticeStatus.ESCALATED] * 3
            + [NoticeStatus.WITHDRAWN] * 4
            + [NoticeStatus.DRAFT] * 7
        )
        seqs: dict[tuple[int, int], int] = {}
        pool = [(cid, items) for cid, items in findings_of.items()]
        rng.shuffle(pool)
        made = 0
        while made < 300 and pool:
            cid, items = pool[made % len(pool)]
            if not items:
                pool.remove((cid, items))
                continue
            finding, by = items.pop()
            status = rng.choice(notice_states)
            created = finding.recorded_at + timedelta(hours=1)
            notice = RectificationNotice(
                agency_id=by.agency_id,
                centre_id=cid,
                status=status,
                requirements="立即整改，三日内回复整改情况并附照片",
                legal_basis="《中华人民共和国食品安全法》第五十五条",
                issuer_id=by.id,
                created_at=created,
            )
            notice.findings.append(finding)
            if items and rng.random() < 0.3:
                notice.findings.append(items.pop()[0])
            numbered = status is not NoticeStatus.DRAFT and (
                status is not NoticeStatus.WITHDRAWN or rng.random() < 0.5
            )
            if numbered:
                year = created.astimezone(CENTRE_TZ).year
                seq = seqs[(by.agency_id, year)] = seqs.get((by.agency_id, year), 0) + 1
                agency = next(a for a in agencies.values() if a.id == by.agency_id)
                notice.year, notice.seq = year, seq
                notice.number = f"{agency.notice_prefix}〔{year}〕{seq}号"
                notice.issued_at = notice.served_at = created
                notice.deadline_working_days = 5
                if status in (NoticeStatus.OVERDUE, NoticeStatus.ESCALATED):
                    notice.deadline = today - timedelta(days=rng.randint(1, 20))
                elif status in (NoticeStatus.VERIFIED, NoticeStatus.WITHDRAWN):
                    notice.deadline = created.date() + timedelta(days=7)
                else:
                    notice.deadline = today + timedelta(days=rng.randint(1, 20))
            if status in (NoticeStatus.ACKNOWLEDGED, NoticeStatus.RESPONDED, NoticeStatus.VERIFIED):
                notice.acknowledged_at = created + timedelta(hours=3)
            if status in (NoticeStatus.RESPONDED, NoticeStatus.VERIFIED):
                notice.responded_at = created + timedelta(days=1)
            if status is NoticeStatus.VERIFIED:
                notice.closed_at = created + timedelta(days=2)
                notice.review_mode = ReviewMode.LIVE_VIDEO
            db.session.add(notice)
            made += 1
        counts["notices"] = made
        for (agency_id, year), seq in seqs.items():
            db.session.add(NoticeCounter(agency_id=agency_id, year=year, last_seq=seq))
        db.session.flush()

        concern_states = list(ConcernStatus)
        for i in range(200):
            p, linked = rng.choice(parents)
            status = concern_states[i % len(concern_states)]
            submitted = now - timedelta(days=rng.uniform(0, 30))
            concern = Concern(
                centre_id=linked[0].id,
                parent_id=p.id,
                client_key=f"bench-{i}",
                text="孩子说午饭的菜有异味，请帮忙看看后厨",
                status=status,
                submitted_at=submitted,
                decide_by=submitted.date() + timedelta(days=9),
                resolve_by=submitted.date() + timedelta(days=21),
            )
            if status is not ConcernStatus.SUBMITTED:
                concern.decided_at = submitted + timedelta(days=1)
            if status in (ConcernStatus.RESOLVED, ConcernStatus.DISMISSED):
                concern.closed_at = submitted + timedelta(days=3)
                concern.answer = "已核实处理"
            db.session.add(concern)
        counts["concerns"] = 200
        db.session.commit()

        all_inspectors = [u for group in inspectors.values() for u in group]
        counts.update(
            centres=len(centres),
            districts=len(districts),
            cameras=sum(len(v) for v in cameras_of.values()),
            parents=len(parents),
            parent_links=sum(len(linked) for _, linked in parents),
            inspectors=len(all_inspectors),
        )
        # The benchmarked parents: distinct accounts, each opening their first centre's page.
        chosen = parents[:clients]
        parent_tokens = [(f"Bearer {issue_access_token(p)}", linked) for p, linked in chosen]
        inspector_tokens = [f"Bearer {issue_access_token(u)}" for u in all_inspectors]
        seeded = Seeded(
            counts=counts,
            parents=[Target("/api/v1/auth/me", t) for t, _ in parent_tokens],
            my_centres=[Target("/api/v1/parent/centres", t) for t, _ in parent_tokens],
            centre_pages=[
                Target(f"/api/v1/parent/centres/{linked[0].id}", t) for t, linked in parent_tokens
            ],
            dashboards=[Target("/api/v1/dashboard", t) for t in inspector_tokens],
            open_notices=[Target("/api/v1/notices?open=true", t) for t in inspector_tokens],
        )
        db.session.remove()
        db.engine.dispose()
    return seeded


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    targets: str  # attribute of Seeded, or "healthz"


ROWS = (
    Row("healthz", "GET /healthz (no auth, DB ping)", "healthz"),
    Row("me", "GET /auth/me — baseline", "parents"),
    Row("my_centres", "parent: GET /parent/centres", "my_centres"),
    Row("centre_page", "parent: GET /parent/centres/<id>", "centre_pages"),
    Row("dashboard", "inspector: GET /dashboard", "dashboards"),
    Row("open_notices", "inspector: GET /notices?open=true", "open_notices"),
)
BASELINE = "me"


def targets_of(seeded: Seeded, row: Row) -> list[Target]:
    if row.targets == "healthz":
        return [Target("/healthz", None)]
    return getattr(seeded, row.targets)


def count_statements(app, seeded: Seeded, sample: int = 20) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """SQL statements one request runs, per row (in this process, on the same database)."""
    from sqlalchemy import event

    from app.extensions import db

    found: dict[str, float] = {}
    with app.app_context():
        engine = db.engine
        statements = [0]

        def on_execute(*_args: Any) -> None:
            statements[0] += 1

        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            client = app.test_client()
            for row in ROWS:
                chosen = targets_of(seeded, row)[:sample]
                total = 0
                for target in chosen:
                    headers = {"Authorization": target.token} if target.token else {}
                    statements[0] = 0
                    response = client.get(target.path, headers=headers)
                    if response.status_code != 200:
                        raise RuntimeError(f"{target.path}: {response.status_code}")
                    total += statements[0]
                found[row.key] = total / len(chosen)
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
            db.session.remove()
            db.engine.dispose()
    return found


# ------------------------------------------------------------------------------------ server


def server_env(instance: Path, url: str, keys: Secrets, port: int, connections: int) -> dict:
    env = {
        **os.environ,
        "BK_ENV": "production",
        "SECRET_KEY": keys.secret_key,
        "CREDENTIALS_KEYS": keys.credentials_keys,
        "HLS_SIGNING_KEY": keys.hls_signing_key,
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(instance),
        "HLS_ROOT": str(instance / "hls"),
        "BK_BIND": f"127.0.0.1:{port}",
        "BK_WORKER_CONNECTIONS": str(max(2000, connections + 200)),
        "FLASK_APP": "wsgi",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("REDIS_URL", None)
    return env


def migrate(env: dict) -> None:
    flask = Path(sys.executable).parent / "flask"
    code, out = run_to_end([str(flask), "db", "upgrade"], timeout=300, env=env)
    if code != 0:
        raise RuntimeError(f"flask db upgrade failed ({code}):\n{out[-3000:]}")


# The last line of a traceback: "sqlalchemy.exc.TimeoutError: QueuePool limit …".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Timeout)\b.*")


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path
    worker_pids: list[int]

    def cpu(self) -> float:
        return sum(cpu_s(pid) for pid in self.worker_pids if pid_alive(pid))

    def exceptions(self) -> dict[str, int]:
        """The exception lines of the tracebacks in the server's log, counted."""
        found: dict[str, int] = {}
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return found
        for line in text.splitlines():
            if EXCEPTION_LINE.match(line):
                found[line[:200]] = found.get(line[:200], 0) + 1
        return found

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(instance: Path, env: dict) -> Server:
    log = instance / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("wb") as out:
        proc = popen(
            [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = "http://" + env["BK_BIND"]
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


def check_targets(server: Server, seeded: Seeded) -> dict[str, dict]:
    """Fetch every distinct target once: each must answer 2xx with the data it should show."""
    import requests

    http = requests.Session()
    shapes: dict[str, dict] = {}
    for row in ROWS:
        sizes, items = [], []
        for target in targets_of(seeded, row):
            headers = {"Authorization": target.token} if target.token else {}
            response = http.get(server.url + target.path, headers=headers, timeout=30)
            if not 200 <= response.status_code < 300:
                raise RuntimeError(
                    f"{target.path} answered {response.status_code}: {response.text[:300]}"
                )
            body = response.json()
            sizes.append(len(response.content))
            if row.key == "my_centres" or row.key == "open_notices":
                items.append(len(body))
            elif row.key == "centre_page":
                items.append(len(body["rooms"]))
            elif row.key == "dashboard":
                items.append(sum(body["centres"].values()))
        if row.key in ("my_centres", "centre_page", "dashboard") and not all(items):
            raise RuntimeError(f"{row.label}: some answers are empty ({items})")
        if row.key == "open_notices" and not any(items):
            raise RuntimeError(f"{row.label}: no open notice in any answer")
        shapes[row.key] = {
            "targets": len(sizes),
            "bytes_mean": round(sum(sizes) / len(sizes)),
            "items_mean": round(sum(items) / len(items), 1) if items else None,
        }
    http.close()
    return shapes


# ------------------------------------------------------------------------------ load generator


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def _read_response(reader: Any) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = head.lower()
    at = headers.find(b"\r\ncontent-length:")
    if at >= 0:
        length = int(headers[at + 17 : headers.index(b"\r\n", at + 2)])
        await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


class _Clock:
    """The phases of one load run: warm-up until every connection has had an answer (and at
    least `warmup` s), then `duration` s measured."""

    def __init__(self, warmup: float, duration: float, connections: int) -> None:
        self.start = time.monotonic()
        self.warmup, self.duration = warmup, duration
        self.waiting_first = set(range(connections))
        self.measure_from: float | None = None
        self.end: float | None = None

    def answered(self, n: int, now: float) -> None:
        self.waiting_first.discard(n)
        self.tick(now)

    def tick(self, now: float) -> None:
        # The first round (every client's first request, all sent at once) is not steady
        # state; a cap keeps a server that cannot answer everyone from stalling the run.
        elapsed = now - self.start
        if (
            self.measure_from is None
            and elapsed >= self.warmup
            and (not self.waiting_first or elapsed >= self.warmup + WARMUP_CAP_S)
        ):
            self.measure_from, self.end = now, now + self.duration


WARMUP_CAP_S = 60.0


async def _load(spec: dict) -> dict:
    """`connections` keep-alive connections, each sending its own request again as soon as the
    previous answer is read. Measured: the requests sent within the measuring window, each
    waited for however long it takes (up to `drain` s after the window), so slow answers are
    not left out; throughput is the answers received within the window."""
    import asyncio

    host, port = spec["host"], spec["port"]
    requests_ = [
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
            + (f"Authorization: {token}\r\n" if token else "")
            + "\r\n"
        ).encode()
        for path, token in spec["targets"]
    ]
    clock = _Clock(spec["warmup"], spec["duration"], spec["connections"])
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counts = {"connection_errors": 0, "warmup_answered": 0, "in_window": 0}
    in_flight: set[int] = set()

    async def connection(n: int) -> None:
        # Connection n is one client: always the same request (parent n's own token).
        request = requests_[n % len(requests_)]
        reader = writer = None
        while True:
            sent_at = time.monotonic()
            clock.tick(sent_at)
            if clock.end is not None and sent_at >= clock.end:
                break
            measured = clock.measure_from is not None
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                in_flight.add(n)
                began = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                elapsed = time.perf_counter() - began
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                counts["connection_errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            finally:
                in_flight.discard(n)
            now = time.monotonic()
            if clock.measure_from is not None and clock.end is not None:
                counts["in_window"] += clock.measure_from <= now < clock.end
            if measured:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            else:
                counts["warmup_answered"] += 1
                if not 200 <= status < 300:
                    statuses[status] = statuses.get(status, 0) + 1
            clock.answered(n, now)
        if writer is not None:
            writer.close()

    tasks = [asyncio.ensure_future(connection(n)) for n in range(spec["connections"])]
    limit = clock.start + spec["warmup"] + WARMUP_CAP_S + spec["duration"] + spec["drain"]
    _done, pending = await asyncio.wait(tasks, timeout=max(1.0, limit - time.monotonic()))
    unfinished = len(in_flight)
    for task in pending:
        task.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    answered = len(latencies)
    non2xx = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    return {
        "answered": answered,
        "warmup_answered": counts["warmup_answered"],
        "warmup_s": (clock.measure_from or clock.start) - clock.start,
        "rps": counts["in_window"] / spec["duration"],
        "mean_ms": 1000 * sum(latencies) / answered if answered else None,
        "p50_ms": 1000 * percentile(latencies, 50) if answered else None,
        "p90_ms": 1000 * percentile(latencies, 90) if answered else None,
        "p99_ms": 1000 * percentile(latencies, 99) if answered else None,
        "max_ms": 1000 * max(latencies) if answered else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non2xx": non2xx,
        "connection_errors": counts["connection_errors"],
        "unfinished": unfinished,
        "errors": non2xx + counts["connection_errors"] + unfinished,
        "client_cpu_s": usage.ru_utime + usage.ru_stime,
        "client_wall_s": time.monotonic() - clock.start,
    }


def client_main(spec_path: str) -> None:
    """The load generator's own process: read the spec, run, print one JSON line."""
    import asyncio

    _die_with_parent()
    spec = json.loads(Path(spec_path).read_text())
    print(json.dumps(asyncio.run(_load(spec))), flush=True)


def measure_row(
    server: Server, targets: list[Target], spec_path: Path, args: argparse.Namespace
) -> dict[str, Any]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    spec = {
        "host": host,
        "port": int(port),
        "connections": args.connections,
        "warmup": args.warmup,
        "duration": args.duration,
        "drain": 120.0,
        "targets": [(t.path, t.token) for t in targets],
    }
    spec_path.write_text(json.dumps(spec))
    spec_path.chmod(0o600)  # access tokens
    load = os.getloadavg()[0]
    cpu_before = server.cpu()
    code, out = run_to_end(
        [sys.executable, str(Path(__file__).resolve()), "--client", str(spec_path)],
        timeout=args.warmup + WARMUP_CAP_S + args.duration + 240,
    )
    cpu = server.cpu() - cpu_before
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise RuntimeError(f"the load generator failed ({code}):\n{out[-2000:]}")
    result = json.loads(lines[-1])
    answered = result["answered"] + result["warmup_answered"]
    wall = result["client_wall_s"]
    rps = result["rps"]
    result.update(
        # Little's law: with every connection always waiting for an answer, the mean latency
        # in steady state is connections / throughput. Far from the measured mean, the window
        # was short for the latencies (slow clients' requests straddle its edges).
        little_mean_ms=1000 * args.connections / rps if rps else None,
        server_cpu_ms_per_request=1000 * cpu / answered if answered else None,
        server_cpu_share=cpu / wall if wall else None,
        client_cpu_share=result["client_cpu_s"] / wall if wall else None,
        loadavg_1m_at_start=round(load, 2),
    )
    return result


# ------------------------------------------------------------------------------------ phases


def run_database(kind: str, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    from app import create_app

    instance = tmp / kind
    instance.mkdir()
    keys = Secrets()
    if kind == "postgresql":
        note(f"{kind}: dropping and rebuilding the public schema of {redacted(url)}")
        reset_postgres(url)
    port = free_port()
    env = server_env(instance, url, keys, port, args.connections)
    note(f"{kind}: flask db upgrade")
    migrate(env)
    note(f"{kind}: seeding {args.centres} centres, {args.parents} parents …")
    started = time.monotonic()
    app = create_app(seed_config(instance, url, keys))
    seeded = seed(app, args.centres, args.parents, args.connections)
    note(f"{kind}: seeded in {time.monotonic() - started:.1f} s: {seeded.counts}")
    statements = count_statements(app, seeded)
    note(f"{kind}: SQL statements per request: {statements}")
    note(f"{kind}: starting gunicorn (gevent worker, BK_ENV=production)")
    server = start_server(instance, env)
    try:
        shapes = check_targets(server, seeded)
        rows: dict[str, Any] = {}
        for row in ROWS:
            note(f"{kind}: {row.label}: {args.warmup:g} s warm-up + {args.duration:g} s")
            r = measure_row(server, targets_of(seeded, row), instance / "load.json", args)
            r.update(sql_statements=statements[row.key], **shapes[row.key])
            rows[row.key] = r
            note(
                f"{kind}: {row.key}: {r['rps']:.0f} req/s, mean {num(r['mean_ms'], '.1f')} ms, "
                f"p50 {num(r['p50_ms'], '.1f')} ms, p99 {num(r['p99_ms'], '.1f')} ms, "
                f"errors {r['errors']} {r['statuses']}, "
                f"server CPU {num(r['server_cpu_ms_per_request'], '.2f')} ms/request"
            )
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn died during the run:\n{server.log_tail()}")
        server_errors = server.exceptions()  # before the shutdown adds its own noise
    finally:
        stop(server.proc)
        STARTED.procs.remove(server.proc)
    if server_errors:
        note(f"{kind}: exceptions in the server log: {server_errors}")
    base = rows[BASELINE]
    for r in rows.values():
        for key in ("mean_ms", "p50_ms", "p99_ms", "rps"):
            ratio = key.replace("_ms", "") + "_ratio"
            r[ratio] = r[key] / base[key] if r[key] is not None and base[key] else None
    return {
        "database": kind,
        "data": seeded.counts,
        "rows": rows,
        "server_exceptions": server_errors,
    }


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def mem_total_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def bench(args: argparse.Namespace) -> dict[str, Any]:
    load_start = os.getloadavg()
    note(f"load average at start: {load_start}")
    tmp = Path(tempfile.mkdtemp(prefix="bk-bench-api-"))
    databases = [("sqlite", f"sqlite:///{tmp / 'sqlite' / 'bright_kitchen.sqlite3'}")]
    if args.pg_url:
        url = args.pg_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        databases.append(("postgresql", url))
    else:
        note("no --pg-url (or BENCH_PG_URL): PostgreSQL is skipped")
    started = time.monotonic()
    results = []
    try:
        for kind, url in databases:
            results.append(run_database(kind, url, tmp, args))
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "load_generator": "asyncio HTTP/1.1 keep-alive client, one process",
        "server": "gunicorn + gevent, 1 worker (deploy/gunicorn.conf.py), BK_ENV=production",
        "baseline": BASELINE,
        "databases": results,
        "wall_s": round(time.monotonic() - started, 1),
        "machine": {
            "nproc": NPROC,
            "mem_total_mib": mem_total_mib(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
    }


def print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(
        f"API latency — {r['server']}; load: {r['load_generator']} on the same machine, "
        f"{r['connections']} connections (closed loop), {r['duration_s']:g} s per row after "
        f"{r['warmup_s']:g} s of warm-up"
    )
    print(
        f"machine: {m['nproc']} cores, {m['mem_total_mib']} MiB RAM, Python {m['python']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}; "
        f"whole run {r['wall_s']:.0f} s"
    )
    data = r["databases"][0]["data"]
    print(
        f"data (each database): {data['centres']} centres in {data['districts']} districts, "
        f"{data['cameras']} cameras, {data['parents']} parents ({data['parent_links']} links), "
        f"{data['inspectors']} inspectors, {data['patrols']} patrols, {data['findings']} "
        f"findings, {data['notices']} notices, {data['concerns']} concerns, "
        f"{data['snapshots']} snapshots"
    )
    print()
    columns = ["req/s", "mean", "p50", "p99", "errors", "×mean", "×p50", "×p99", "CPU", "SQL"]
    header1 = [""]
    header2 = ["(ms; × = ratio to the baseline row)"]
    for db_ in r["databases"]:
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[db_["database"]]
        header1 += [name] + [""] * (len(columns) - 1)
        header2 += columns
    lines = [header1, header2]
    for row in ROWS:
        cells = [row.label]
        for db_ in r["databases"]:
            x = db_["rows"][row.key]
            cells += [
                f"{x['rps']:,.0f}",
                num(x["mean_ms"], ",.0f"),
                num(x["p50_ms"], ",.1f"),
                num(x["p99_ms"], ",.0f"),
                f"{x['errors']}",
                num(x["mean_ratio"], ".2f"),
                num(x["p50_ratio"], ".2f"),
                num(x["p99_ratio"], ".2f"),
                num(x["server_cpu_ms_per_request"], ".2f"),
                f"{x['sql_statements']:.1f}",
            ]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[1]))]
    for n, line in enumerate(lines):
        text = f"{line[0]:<{widths[0]}}"
        for i, cell in enumerate(line[1:], start=1):
            sep = " │ " if (i - 1) % len(columns) == 0 else "  "
            text += sep + (f"{cell:<{widths[i]}}" if n == 0 else f"{cell:>{widths[i]}}")
        print(text.rstrip())
    print()
    print(
        "errors: non-2xx answers + connection errors + requests unanswered after the drain; "
        "CPU: server worker CPU ms per request; SQL: statements per request"
    )
    bad = [
        (db_["database"], key, x)
        for db_ in r["databases"]
        for key, x in db_["rows"].items()
        if x["errors"]
    ]
    if bad:
        for database, key, x in bad:
            print(
                f"WARNING: {database} {key}: statuses {x['statuses']}, connection errors "
                f"{x['connection_errors']}, unanswered {x['unfinished']}"
            )
    else:
        print("every answer 2xx, no connection error, nothing left unanswered: in every row")
    for db_ in r["databases"]:
        for line, count in db_["server_exceptions"].items():
            print(f"server log, {db_['database']}: {count} × {line}")
    for db_ in r["databases"]:
        for row in ROWS:
            x = db_["rows"][row.key]
            little, mean = x["little_mean_ms"], x["mean_ms"]
            if little and mean and not 0.8 <= mean / little <= 1.25:
                print(
                    f"note: {db_['database']} {row.key}: mean {mean:,.0f} ms but connections / "
                    f"throughput = {little:,.0f} ms — latencies long for the window, the sample "
                    "leans to the clients answered fastest"
                )
    for db_ in r["databases"]:
        shares = [
            f"{key} {x['server_cpu_share']:.0%}/{x['client_cpu_share']:.0%}"
            for key, x in db_["rows"].items()
        ]
        print(
            f"{db_['database']}: CPU of the server worker / the load generator, of one core: "
            + ", ".join(shares)
        )


def num(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL"))
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0, help="s measured per row")
    parser.add_argument("--warmup", type=float, default=3.0, help="s of warm-up per row")
    parser.add_argument("--centres", type=int, default=200)
    parser.add_argument("--parents", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the load generator's process
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return
    if args.parents < args.connections:
        parser.error("--parents must be at least --connections (one parent per client)")

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    result = bench(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
