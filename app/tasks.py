"""Background and periodic work on Huey (DESIGN.md: one maintained queue engine with an
embedded mode): SQLite storage in the instance folder by default, Redis when `REDIS_URL` is
set. The outbox table stays the record of what must be sent; the queue only wakes workers."""

from __future__ import annotations

import signal
from pathlib import Path

from flask import Flask
from huey import Huey, RedisHuey, SqliteHuey, crontab


def make_huey(app: Flask) -> Huey:
    if app.config.get("TESTING"):
        from huey import MemoryHuey

        huey: Huey = MemoryHuey("bright-kitchen", immediate=True)
    # Nothing reads a task's return value: without results=False every run would leave one
    # stored for ever.
    elif app.config.get("REDIS_URL"):
        huey = RedisHuey("bright-kitchen", url=app.config["REDIS_URL"], results=False)
    else:
        huey = SqliteHuey(
            "bright-kitchen",
            filename=str(Path(app.config["INSTANCE_PATH"]) / "huey.sqlite3"),
            results=False,
        )
    _register(huey, app)
    return huey


def _register(huey: Huey, app: Flask) -> None:
    @huey.periodic_task(crontab(minute="*/5"), name="legal_clocks")
    def legal_clocks() -> dict[str, list[int]]:
        """Mark overdue notices and escalate the long-overdue (idempotent, safe to overlap)."""
        from app.services import notices

        with app.app_context():
            return {
                "overdue": notices.mark_overdue(),
                "escalated": notices.escalate_overdue(),
            }

    @huey.periodic_task(crontab(minute="*"), name="camera_alerts")
    def camera_alerts() -> dict[str, list[int]]:
        """Cameras bad while a meal window is open: the operator is told (also of one that was
        already bad when the window opened), the regulators' groups if it persists."""
        from app.services import cameras

        with app.app_context():
            return {
                "reported": cameras.report_at_window_open(),
                "escalated": cameras.escalate_persistent_alerts(),
            }

    @huey.periodic_task(crontab(minute="*/10"), name="meal_snapshots")
    def meal_snapshots() -> list[int]:
        """Snapshots of the rooms parents may see, every 10 minutes of each meal window."""
        from app.services import snapshots

        with app.app_context():
            return snapshots.take_scheduled(app.extensions["bk_snapshot"])

    @huey.periodic_task(crontab(hour="3", minute="17"), name="snapshot_retention")
    def snapshot_retention() -> int:
        """Delete snapshots past SNAPSHOT_RETENTION_DAYS that are not evidence."""
        from app.services import snapshots

        with app.app_context():
            return snapshots.purge_expired()

    @huey.periodic_task(crontab(hour="3", minute="47"), name="record_retention")
    def record_retention() -> tuple[int, int, int]:
        """Delete expired refresh tokens, old delivered messages and old watch sessions."""
        from app.services import retention

        with app.app_context():
            purged = retention.purge_old_records()
            return purged.refresh_tokens, purged.notifications, purged.watch_sessions

    @huey.periodic_task(crontab(hour="*/6", minute="40"), name="commissioning_recheck")
    def commissioning_recheck() -> list[int]:
        """Re-run the automatic checklist items of live centres; a failure raises a finding."""
        from app.services import onboarding

        with app.app_context():
            return onboarding.recheck_live(app.extensions["bk_prober"])

    app.extensions["bk_tasks"] = {
        "legal_clocks": legal_clocks,
        "camera_alerts": camera_alerts,
        "meal_snapshots": meal_snapshots,
        "snapshot_retention": snapshot_retention,
        "record_retention": record_retention,
        "commissioning_recheck": commissioning_recheck,
    }


def init_app(app: Flask) -> None:
    app.extensions["huey"] = make_huey(app)


def start_embedded_consumer(app: Flask):  # type: ignore[no-untyped-def]
    """Run the consumer's worker and scheduler threads inside this process (embedded default);
    production runs `flask bk worker` as its own process."""
    huey = app.extensions["huey"]
    if huey.immediate:
        return None  # tests run tasks inline; there is nothing to consume
    # Several threads: the outbox poller holds one for most of each minute (bots/__init__.py).
    consumer = huey.create_consumer(
        workers=4, worker_type="thread", periodic=True, check_worker_health=False
    )
    consumer.start()
    # start() takes over SIGTERM/SIGINT for a consumer that owns its process; here the web
    # server does, so give the signals back (the worker threads end with the process).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    return consumer
