"""Chat channels: adapters behind one interface (bots.channels), the callbacks of WeChat and
WeCom (bots.callbacks), the command router (bots.router) and the outbox dispatcher
(bots.dispatcher). `init_app` builds the configured channels, registers the callbacks and puts
delivery on the app's Huey queue.

Public API:
- `bots.channels`: `ChatChannel`, `Message`, `Recipient`, `Delivery`, `Pace`, `SendError`,
  `Throttled`, `register`, `build` → `Registry`.
- `bots.dispatcher.dispatch_once(app)` / `drain(app)`: delivery passes over the outbox.
- `bots.router.handle(inbound)` → `Reply`: one chat message to one service call.
- `bots.render.render(event, payload, audience=…)` → `Message`.
"""

from __future__ import annotations

import time

from flask import Flask
from huey import crontab

WORKER_POLL_RUN_S = 55.0  # one periodic run polls for most of its minute


def init_app(app: Flask) -> None:
    from bots import callbacks, channels

    app.extensions["bk_chat"] = channels.build(app.config)
    app.register_blueprint(callbacks.wechat_bp)
    app.register_blueprint(callbacks.wecom_bp)
    _register_tasks(app)


def _register_tasks(app: Flask) -> None:
    from app.extensions import db
    from app.services import chat
    from bots import dispatcher, followup

    huey = app.extensions["huey"]

    @huey.task(name="outbox_dispatch")
    def outbox_dispatch() -> int:
        """One delivery pass, queued by a commit that wrote outbox rows."""
        with app.app_context():
            return len(dispatcher.dispatch_once(app).sent)

    @huey.periodic_task(crontab(minute="*"), name="outbox_poll")
    @huey.lock_task("outbox-poll")
    def outbox_poll() -> int:
        """Huey's periodic tasks run at most once a minute; the outbox needs seconds, so each
        run polls for most of its minute (the lock keeps one poller at a time)."""
        sent = 0
        stop_at = time.monotonic() + WORKER_POLL_RUN_S
        while time.monotonic() < stop_at:
            with app.app_context():
                report = dispatcher.dispatch_once(app)
                db.session.remove()
            sent += len(report.sent)
            if not report.busy:
                time.sleep(app.config["OUTBOX_POLL_S"])
        return sent

    @huey.task(name="chat_photo", retries=5, retry_delay=15)
    def chat_photo(inbound_id: int) -> str:
        with app.app_context():
            outcome = followup.fetch_photo(app, inbound_id)
        if outcome == "retry":
            raise RuntimeError(f"photo {inbound_id}: download failed")  # Huey retries it
        return outcome

    @huey.periodic_task(crontab(minute="*"), name="chat_photo_sweep")
    def chat_photo_sweep() -> int:
        """Photos whose download never finished (the worker stopped) are fetched again."""
        with app.app_context():
            ids = chat.inbound_ids_needing_photos(older_than_s=120)
            for inbound_id in ids:
                followup.fetch_photo(app, inbound_id)
        return len(ids)

    app.extensions["bk_tasks"].update(
        outbox_dispatch=outbox_dispatch,
        outbox_poll=outbox_poll,
        chat_photo=chat_photo,
        chat_photo_sweep=chat_photo_sweep,
    )
    # Immediate mode (tests) would run the pass inside the commit that wrote the row; there the
    # dispatcher is driven explicitly.
    app.extensions["bk_outbox_wake"] = None if huey.immediate else outbox_dispatch
