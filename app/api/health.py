"""Liveness and readiness for load balancers and the run script."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # any database failure makes the instance unhealthy
        current_app.logger.exception("health check: database unreachable")
        db.session.rollback()
        database = "unreachable"
    media = current_app.extensions.get("bk_media_state", "not_running")
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "database_backend": db.engine.dialect.name,
        "media_supervisor": media,
    }
    return jsonify(body), 200 if database == "ok" else 503
