"""The outbox dispatcher: delivers due `Notification` rows through their channel's adapter.

One pass (`dispatch_once`):
1. rows whose claim was abandoned (a worker died mid-send) go back to pending;
2. due rows are grouped by destination (a robot, or one person on one channel) and paced: a
   destination gets only what its platform allows in each window (counted from the outbox
   itself, so every worker process sees the same sends); the rest wait, uncounted;
3. the allowed rows are claimed (see app/services/delivery.py: one winner per row across
   processes), rendered in Chinese and sent — destinations in parallel, one destination's rows
   in order — and each result is recorded, as soon as it is known, by the claim that holds the
   row. A destination's rows
   stay held while they go out one by one: the claims are renewed as the pass goes on (a slow
   platform must not let a claim run out and another worker send the row again).

Failures: a transient error retries with exponential backoff (`OUTBOX_BACKOFF_BASE_S` doubling
to `OUTBOX_BACKOFF_CAP_S`, ±20 % jitter) until `OUTBOX_MAX_ATTEMPTS` (by default ≈4 hours of
trying), then the row is `failed` with its `last_error`; a permanent one (unknown recipient,
revoked robot) fails at once. As soon as one message reaches a destination again, every row of
that destination still waiting out a backoff is due at once (paced as usual). A
throttling answer (WeCom 45009, DingTalk 130101/410100, Feishu 11232, WeChat's used-up daily
quota 45009) is not the row's fault: the
attempt is given back and the whole destination waits as long as the platform asks. Every row
is sent in its own try block and every destination in its own thread, so one channel's failure
(or hang, bounded by the HTTP timeout) never stops another's rows.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models import Notification, utcnow
from app.services import delivery
from bots.channels import ChannelNotConfigured, Message, Recipient, Registry, SendError, Throttled
from bots.render import GROUP, PERSON, render

log = logging.getLogger(__name__)
MAX_THREADS = 8


@dataclass
class PassReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.sent or self.retrying or self.failed or self.throttled)


@dataclass(frozen=True)
class _Outcome:
    row: delivery.Claimed
    error: SendError | Exception | None = None
    skipped_for: datetime | None = None  # not sent: its destination was throttled meanwhile
    lost: bool = False  # not sent: its lease ran out and another worker took it back


def backoff_s(attempt: int, base: float, cap: float) -> float:
    return min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.8, 1.2)


def _pace(rows: list[delivery.DueRow], registry: Registry, now: datetime) -> tuple[list, list]:
    """Split due rows into those their destinations may take now and those that must wait."""
    groups: OrderedDict[tuple[str, str], list[delivery.DueRow]] = OrderedDict()
    for row in rows:
        groups.setdefault(row.pace_key, []).append(row)
    allowed: list[int] = []
    waiting: list[tuple[list[int], datetime]] = []
    for key, group in groups.items():
        try:
            paces = registry.get(key[0]).paces
        except ChannelNotConfigured:
            paces = ()
        allowance, free_at = len(group), now
        for pace in paces:
            window = timedelta(seconds=pace.window_s)
            sent = delivery.recent_sends(key, now - window)
            free = max(pace.limit - len(sent), 0)
            if free < allowance:
                allowance = free
                # The slot that frees first once enough older sends leave the window.
                oldest_blocking = sent[len(sent) - pace.limit] if len(sent) >= pace.limit else now
                free_at = max(free_at, oldest_blocking + window)
        allowed.extend(r.id for r in group[:allowance])
        if allowance < len(group):
            waiting.append(([r.id for r in group[allowance:]], free_at))
    return allowed, waiting


class _Lease:
    """A destination's claimed rows, kept held while they are sent one by one.

    A pass may take longer than `OUTBOX_LEASE_S` (a platform that answers each request just
    before the HTTP timeout): without renewal the later rows' claims would run out and another
    worker would send them again. So before each send, once a quarter of the lease has gone by
    since the last renewal, the claims still to be sent are renewed; a row that was taken back
    meanwhile is reported lost and not sent. (Between renewals at least three quarters of the
    lease remain, far more than one request can take.) Each row's result is recorded as soon
    as it is known, so a sent row is never left waiting for the rest of the pass."""

    def __init__(self, rows: list[delivery.Claimed], lease_s: float, claimed_at: float) -> None:
        self.lease_s = lease_s
        # When the claim was made (monotonic): a destination may wait for a free thread.
        self.renewed_at = claimed_at
        self.held = {row.id for row in rows}

    def holds(self, row: delivery.Claimed, pending: list[delivery.Claimed]) -> bool:
        if time.monotonic() - self.renewed_at >= self.lease_s / 4:
            self.held = delivery.renew([(r.id, r.attempt) for r in pending], self.lease_s)
            self.renewed_at = time.monotonic()
        return row.id in self.held


def _send_group(
    app: Flask,
    registry: Registry,
    rows: list[delivery.Claimed],
    claimed_at: float,
    report: PassReport,
) -> None:
    """One destination's rows, in order, each result recorded at once; stops at a throttle
    (the rest are handed back). Runs in its own app context (a worker thread's)."""
    with app.app_context():
        config = app.config
        lease = _Lease(rows, config["OUTBOX_LEASE_S"], claimed_at)
        throttled_until: datetime | None = None
        delivered = False
        for index, row in enumerate(rows):
            if throttled_until is not None:
                outcome = _Outcome(row, skipped_for=throttled_until)
            elif not _still_held(lease, row, rows[index:]):
                outcome = _Outcome(row, lost=True)
            else:
                outcome = _send(registry, row, config["PUBLIC_URL"])
                if isinstance(outcome.error, Throttled):
                    throttled_until = utcnow() + timedelta(seconds=outcome.error.retry_after)
                delivered = delivered or outcome.error is None
            try:
                _record(outcome, config, report)
            except Exception:  # the database hiccuped (rolled back): this row only
                log.exception("outbox %s: result not recorded (may be sent once more)", row.id)
        if delivered:
            # The destination answered: what failed while it was away goes now, not at the end
            # of each row's backoff.
            delivery.hasten_destination((rows[0].channel, rows[0].target))


def _still_held(lease: _Lease, row: delivery.Claimed, pending: list[delivery.Claimed]) -> bool:
    """Whether this worker may still send the row. When the claim cannot be renewed (the
    database is unreachable) it is not sent: its lease runs out and a worker takes it again."""
    try:
        return lease.holds(row, pending)
    except Exception:  # (the service rolled its transaction back)
        log.exception("outbox %s: claim not renewed; left for its lease to run out", row.id)
        return False


def _send(registry: Registry, row: delivery.Claimed, base_url: str) -> _Outcome:
    try:
        if not row.address:
            raise SendError("recipient has no chat address any more", permanent=True)
        channel = registry.get(row.adapter)
        message: Message = render(
            row.event,
            row.payload,
            audience=PERSON if row.is_person else GROUP,
            role=row.role,
            centre_name=row.centre_name,
            base_url=base_url,
        )
        channel.send(Recipient(row.address, row.last_inbound_at), message)
        return _Outcome(row)
    except Exception as exc:  # any adapter trouble is this row's, never the pass's
        return _Outcome(row, exc)


def dispatch_once(app: Flask | None = None, now: datetime | None = None) -> PassReport:
    """One delivery pass over the due rows (safe to run in several processes at once)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    registry: Registry = app.extensions["bk_chat"]
    report = PassReport()
    now = now or utcnow()
    delivery.reclaim_abandoned(now)
    due = delivery.due(config["OUTBOX_BATCH"], now)
    if not due:
        return report
    allowed, waiting = _pace(due, registry, now)
    for ids, until in waiting:
        delivery.defer(ids, until)
        report.deferred.extend(ids)
    claimed_at = time.monotonic()
    claimed = delivery.claim(allowed, config["OUTBOX_LEASE_S"], now)
    groups: OrderedDict[tuple[str, str], list[delivery.Claimed]] = OrderedDict()
    for row in claimed:
        groups.setdefault((row.channel, row.address or f"#{row.id}"), []).append(row)
    if len(groups) == 1:
        _send_group(app, registry, next(iter(groups.values())), claimed_at, report)
    elif groups:  # (none: another worker took them all)
        with ThreadPoolExecutor(
            max_workers=min(len(groups), MAX_THREADS), thread_name_prefix="outbox"
        ) as pool:
            for done in [
                pool.submit(_send_group, app, registry, group, claimed_at, report)
                for group in groups.values()
            ]:
                done.result()
    return report


def _record(outcome: _Outcome, config: Any, report: PassReport) -> None:
    row, exc = outcome.row, outcome.error
    if outcome.lost:  # another worker holds it now and records it
        report.lost.append(row.id)
        log.warning("outbox %s: claim lost to another worker before sending", row.id)
        return
    if outcome.skipped_for is not None:
        delivery.release(row.id, row.attempt)
        delivery.defer([row.id], outcome.skipped_for)
        report.deferred.append(row.id)
        return
    if exc is None:
        if not delivery.mark_sent(row.id, row.attempt):
            log.warning("outbox %s: sent, but its claim had passed to another worker", row.id)
        report.sent.append(row.id)
        return
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, Throttled):
        until = utcnow() + timedelta(seconds=exc.retry_after)
        delivery.mark_throttled(row.id, row.attempt, error, until)
        delivery.defer_destination((row.channel, row.target), until)
        report.throttled.append(row.id)
        log.warning("outbox %s: %s throttled, waiting %ss", row.id, row.channel, exc.retry_after)
        return
    permanent = isinstance(exc, SendError) and exc.permanent
    retry_in = (
        None
        if permanent
        else backoff_s(row.attempt, config["OUTBOX_BACKOFF_BASE_S"], config["OUTBOX_BACKOFF_CAP_S"])
    )
    status = delivery.mark_failed_attempt(
        row.id, row.attempt, error, retry_in, config["OUTBOX_MAX_ATTEMPTS"]
    )
    if status.value == "failed":
        report.failed.append(row.id)
        log.error(
            "outbox %s: %s failed for good after %s attempts: %s",
            row.id,
            row.channel,
            row.attempt,
            error,
        )
    else:
        report.retrying.append(row.id)
        log.warning("outbox %s: %s attempt %s failed: %s", row.id, row.channel, row.attempt, error)


def drain(app: Flask | None = None, max_passes: int = 50) -> PassReport:
    """Passes until nothing is due now (tests, the CLI and the benchmark)."""
    total = PassReport()
    for _ in range(max_passes):
        report = dispatch_once(app)
        for name in ("sent", "retrying", "failed", "throttled", "deferred", "lost"):
            getattr(total, name).extend(getattr(report, name))
        if not report.busy:
            break
    return total


# --- waking the worker when a commit wrote outbox rows ---------------------------------------


@event.listens_for(Session, "after_flush")
def _note_outbox_rows(session: Session, flush_context: Any) -> None:
    if any(isinstance(obj, Notification) for obj in session.new):
        session.info["outbox_written"] = True


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if not session.info.pop("outbox_written", False):
        return
    try:
        wake = current_app.extensions.get("bk_outbox_wake")
    except RuntimeError:  # no app context: the periodic poll will find the rows
        return
    if wake is not None:
        try:
            wake()
        except Exception:  # the queue is down: the change is committed, the poller will send
            log.warning("could not wake the outbox worker", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_outbox_rows(session: Session) -> None:
    session.info.pop("outbox_written", None)
