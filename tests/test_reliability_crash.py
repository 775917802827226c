"""The server is SIGKILLed in the middle of concurrent writes and must lose nothing it
acknowledged.

`python -m app.serve` runs over the test's migrated database (SQLite file or PostgreSQL, as in
tests/web_support.py). Parent threads submit concerns with photos (multipart, a distinct
client_key each) and operator threads answer issued notices with photos, as fast as the server
answers. At a random moment the whole server process group gets SIGKILL. Then, for each cycle:

- every request that got a 2xx before the kill is in the database (read directly through
  SQLAlchemy), with exactly the photos it sent, each file on disk with the right size;
- nothing is half-written: every concern and every response round in the database — also
  those whose answer never arrived — has exactly the photos of its request;
- after a restart, the requests that were in flight are retried with the same client_key (a
  notice answer is retried as is): never a duplicate concern, never a second response round.

Quick in CI (3 kill cycles); ``BK_RELIABILITY_FULL=1`` runs 20 (scripts/reliability.sh).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Concern,
    Finding,
    FindingCategory,
    NoticeResponse,
    RectificationNotice,
    Severity,
    User,
)
from app.services import notices
from app.services.base import transaction
from tests import factories as f
from tests.conftest import PG_URL
from tests.reliability_support import cycles, summarise

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parent.parent
PARENT_THREADS = 4
OPERATOR_THREADS = 2  # one per centre: a notice is answered by its own centre's operator
NOTICES_PER_OPERATOR = 25  # per cycle; more than an operator thread answers before the kill
_pixels = itertools.count(1)


def unique_png() -> bytes:
    """A small PNG no other request sends: its sha256 tells whose photo a row is."""
    n = next(_pixels)
    image = Image.new("RGB", (16, 16), (n % 251, (n // 251) % 251, 7))
    image.putpixel((0, 0), (n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m app.serve` in its own process group, killable and restartable."""

    def __init__(self, app_config, log_path: Path) -> None:  # type: ignore[no-untyped-def]
        self.env = {
            **os.environ,
            "BK_ENV": "testing",
            "INSTANCE_PATH": app_config.INSTANCE_PATH,
            "HLS_ROOT": app_config.HLS_ROOT,
            "PYTHONPATH": str(ROOT),
            "EMBEDDED_MEDIA": "false",
            # Many concerns per parent in seconds: the hourly limit is not under test here.
            "CONCERNS_PER_HOUR": "100000",
        }
        self.env.pop("REDIS_URL", None)
        if PG_URL:
            self.env["DATABASE_URL"] = PG_URL
        else:
            self.env.pop("DATABASE_URL", None)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> float:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = self.log_path.open("ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.serve", "--port", str(port)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = started + 30
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(self.log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Attempt:
    """One write request: what was sent and what the client heard back."""

    kind: str  # "concern" or "response"
    key: str  # client_key, or the notice id
    token: str
    data: dict[str, str]
    photos: list[bytes]
    status: int | None = None  # None: no answer (connection dropped by the kill)

    @property
    def acked(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def send(self, base: str, session: requests.Session) -> int:
        path = (
            "/api/v1/parent/concerns"
            if self.kind == "concern"
            else f"/api/v1/notices/{self.key}/responses"
        )
        files = [("photos", (f"p{i}.png", p, "image/png")) for i, p in enumerate(self.photos)]
        response = session.post(
            base + path,
            data=self.data,
            files=files,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=20,
        )
        return response.status_code


@dataclass
class Writers:
    url: str
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, next_attempt) -> None:  # type: ignore[no-untyped-def]
        """Send attempts one after another until the server is gone or we are told to stop."""
        with requests.Session() as session:
            while not self.stop.is_set():
                attempt = next_attempt()
                if attempt is None:
                    return
                with self.lock:
                    self.attempts.append(attempt)
                try:
                    attempt.status = attempt.send(self.url, session)
                except requests.RequestException:
                    return  # the kill: this one is in flight, unacknowledged
                if not attempt.acked:
                    return  # recorded; the test fails on it below


def concern_source(prefix: str, token: str, centre_id: int):  # type: ignore[no-untyped-def]
    """A parent's endless stream of concerns, each with its own client_key and 0–3 photos."""
    numbers = itertools.count()

    def next_attempt() -> Attempt:
        key = f"{prefix}-{next(numbers)}"
        return Attempt(
            "concern",
            key,
            token,
            {"centre_id": str(centre_id), "text": f"厨房地面有积水 {key}", "client_key": key},
            [unique_png() for _ in range(random.randint(0, 3))],
        )

    return next_attempt


def response_source(queue: Iterator[int], token: str):  # type: ignore[no-untyped-def]
    """An operator answering the issued notices of their centre, one by one, 1–3 photos each."""

    def next_attempt() -> Attempt | None:
        notice_id = next(queue, None)
        if notice_id is None:
            return None
        return Attempt(
            "response",
            str(notice_id),
            token,
            {"text": f"已灭虫，见照片（通知 {notice_id}）"},
            [unique_png() for _ in range(random.randint(1, 3))],
        )

    return next_attempt


def _login(url: str, username: str) -> str:
    response = requests.post(
        url + "/api/v1/auth/login", json={"username": username, "password": f.PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _issue_notices(inspector, centre_id: int, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Findings, drafts and issuance through the notices service (its own write transactions,
    which on SQLite take the write lock up front, as the server's do)."""
    ids = []
    for _ in range(count):
        with transaction():
            finding = Finding(
                centre_id=centre_id,
                category=FindingCategory.PESTS,
                severity=Severity.II,
                description="发现蟑螂",
            )
            db.session.add(finding)
        draft = notices.create_draft(
            inspector,
            notices.DraftInput(
                centre_id=centre_id,
                finding_ids=(finding.id,),
                requirements="立即灭虫并提交整改照片",
                working_days=3,
            ),
        )
        ids.append(notices.issue(inspector, draft.id).id)
    return ids


def _check_photos(rows, sent: list[bytes], upload_root: Path, what: str) -> None:  # type: ignore[no-untyped-def]
    assert sorted(p.sha256 for p in rows) == sorted(sha(p) for p in sent), f"{what}: photos"
    for row in rows:
        stored = upload_root / row.path
        assert stored.is_file(), f"{what}: {row.path} missing on disk"
        assert stored.stat().st_size == row.size_bytes, f"{what}: {row.path} truncated"


@pytest.mark.parametrize("n", [cycles()])
def test_sigkill_during_concurrent_writes_loses_nothing_acknowledged(
    n: int, app, app_config, tmp_path: Path
) -> None:
    meilan = f.district()
    agency = f.agency(meilan)
    inspector = f.inspector_of(agency)
    centres = [f.centre(meilan) for _ in range(OPERATOR_THREADS)]
    operators = [f.operator_of(c) for c in centres]
    parents = [f.parent_of(*centres) for _ in range(PARENT_THREADS)]
    db.session.commit()
    centre_ids = [c.id for c in centres]
    inspector_id = inspector.id
    upload_root = Path(app.config["UPLOAD_ROOT"])

    server = Server(app_config, tmp_path / "server.log")
    figures: dict[str, list[float]] = {"server start": [], "restart after SIGKILL": []}
    counts: dict[str, list[int]] = {
        "acknowledged writes before the kill": [],
        "in flight at the kill": [],
        "in flight but committed": [],
        "retries answered 'already there'": [],
    }
    try:
        figures["server start"].append(server.start())
        parent_tokens = [_login(server.url, p.username) for p in parents]
        operator_tokens = [_login(server.url, o.username) for o in operators]
        for cycle in range(n):
            # Fresh notices for this cycle (the server is idle, so no writer races this).
            issuer = db.session.get(User, inspector_id)
            queues = [iter(_issue_notices(issuer, c, NOTICES_PER_OPERATOR)) for c in centre_ids]
            db.session.remove()
            writers = Writers(server.url)

            sources = [
                concern_source(f"c{cycle}-p{p}", parent_tokens[p], centre_ids[p % len(centre_ids)])
                for p in range(PARENT_THREADS)
            ]
            sources += [response_source(q, t) for q, t in zip(queues, operator_tokens, strict=True)]
            threads = [threading.Thread(target=writers.run, args=(s,)) for s in sources]
            for thread in threads:
                thread.start()
            time.sleep(random.uniform(0.8, 2.0))
            server.kill()
            writers.stop.set()
            for thread in threads:
                thread.join(30)
                assert not thread.is_alive()

            attempts = list(writers.attempts)
            refused = [(a.kind, a.key, a.status) for a in attempts if a.status and not a.acked]
            assert not refused, f"cycle {cycle}: refused before the kill: {refused}"
            acked = [a for a in attempts if a.acked]
            in_flight = [a for a in attempts if a.status is None]
            assert acked, f"cycle {cycle}: nothing was acknowledged before the kill"

            # Everything acknowledged is there; nothing is half-written.
            db.session.remove()
            committed_unacked = 0
            for attempt in attempts:
                if attempt.kind == "concern":
                    rows = list(
                        db.session.scalars(select(Concern).where(Concern.client_key == attempt.key))
                    )
                    assert len(rows) <= 1
                    if attempt.acked:
                        assert rows, f"acknowledged concern {attempt.key} lost"
                    if rows:
                        _check_photos(rows[0].photos, attempt.photos, upload_root, attempt.key)
                else:
                    rows = list(
                        db.session.scalars(
                            select(NoticeResponse).where(
                                NoticeResponse.notice_id == int(attempt.key)
                            )
                        )
                    )
                    assert len(rows) <= 1
                    if attempt.acked:
                        assert rows, f"acknowledged answer to notice {attempt.key} lost"
                    if rows:
                        assert rows[0].round == 1
                        what = f"notice {attempt.key}"
                        _check_photos(rows[0].photos, attempt.photos, upload_root, what)
                        notice = db.session.get(RectificationNotice, int(attempt.key))
                        assert notice.status.value == "responded"
                if rows and not attempt.acked:
                    committed_unacked += 1
            db.session.remove()

            # Restart, retry what was in flight: no duplicates.
            figures["restart after SIGKILL"].append(server.start())
            already = 0
            with requests.Session() as session:
                for attempt in in_flight:
                    status = attempt.send(server.url, session)
                    expected = {200, 201} if attempt.kind == "concern" else {201, 409}
                    assert status in expected, (attempt.kind, attempt.key, status)
                    already += status in (200, 409)
            for attempt in in_flight:
                if attempt.kind == "concern":
                    rows = list(
                        db.session.scalars(select(Concern).where(Concern.client_key == attempt.key))
                    )
                else:
                    rows = list(
                        db.session.scalars(
                            select(NoticeResponse).where(
                                NoticeResponse.notice_id == int(attempt.key)
                            )
                        )
                    )
                assert len(rows) == 1, f"{attempt.kind} {attempt.key}: {len(rows)} rows"
                _check_photos(rows[0].photos, attempt.photos, upload_root, attempt.key)
            db.session.remove()

            counts["acknowledged writes before the kill"].append(len(acked))
            counts["in flight at the kill"].append(len(in_flight))
            counts["in flight but committed"].append(committed_unacked)
            counts["retries answered 'already there'"].append(already)

        # Whole run: one concern per client key and one answer per notice.
        total = db.session.scalar(select(func.count(Concern.id)))
        keys = db.session.scalar(select(func.count(func.distinct(Concern.client_key))))
        assert total == keys
        rounds = db.session.scalar(
            select(func.count()).select_from(NoticeResponse).where(NoticeResponse.round > 1)
        )
        assert rounds == 0
    finally:
        server.stop()
        db.session.remove()
    summarise(
        f"server SIGKILL during concurrent writes ({'PostgreSQL' if PG_URL else 'SQLite'}), "
        f"{n} cycles, {PARENT_THREADS} parent + {OPERATOR_THREADS} operator threads",
        figures,
        counts,
    )
