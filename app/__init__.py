"""Bright Kitchen web application: `create_app(config)` binds every subsystem."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from config import Config, load_config


def create_app(config: Config | None = None) -> Flask:
    from app import (  # noqa: F401 - database: engine set-up
        cli,
        database,
        errors,
        metrics,
        secrets,
        tasks,
    )
    from app.api import init_app as init_api
    from app.extensions import db, migrate, socketio
    from app.media_runner import init_app as init_media
    from app.realtime import client_manager
    from app.realtime import init_app as init_realtime
    from app.web import init_app as init_web
    from bots import init_app as init_bots

    config = config or load_config()
    if config.ENV_NAME != "production":
        secrets.ensure_local_secrets(config)
    Path(config.INSTANCE_PATH).mkdir(parents=True, exist_ok=True)

    app = Flask(__name__, instance_path=config.INSTANCE_PATH, instance_relative_config=False)
    app.config.from_mapping(config.to_flask())
    app.config["BK_CONFIG"] = config
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    pool = {
        "pool_size": app.config["DB_POOL_SIZE"],
        "max_overflow": app.config["DB_MAX_OVERFLOW"],
        "pool_timeout": app.config["DB_POOL_TIMEOUT_S"],
    }
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}, **pool}
        )
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, **pool})

    if app.config["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    _configure_logging(app)
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(__file__).resolve().parent.parent / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        message_queue=app.config.get("REDIS_URL"),
        # Ours applies the room orders of app.realtime; a fresh one for every app.
        client_manager=client_manager(app.config.get("REDIS_URL")),
        cors_allowed_origins=[],
    )
    init_api(app)
    # After the API: its own HTTP error handler is replaced by ours (one JSON error shape).
    errors.init_app(app)
    init_web(app)
    init_realtime(app)
    tasks.init_app(app)
    init_bots(app)
    metrics.init_app(app)
    init_media(app)
    cli.init_app(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Strip credentials from every log record of every logger, message and traceback alike.

    A record factory sees each record as it is made, before any handler (ours, gunicorn's,
    pytest's) formats it, so no handler can print an RTSP password.
    """
    from app.secrets import redact

    previous = logging.getLogRecordFactory()
    if getattr(previous, "bk_redacting", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left for logging to report as usual
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.bk_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
