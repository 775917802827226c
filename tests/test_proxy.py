"""Behind nginx the client's address comes from X-Forwarded-For (audit log, rate limits)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import AuditLog, Role
from tests import factories as f


def test_behind_one_proxy_the_client_address_is_the_forwarded_one(app, app_config):
    # `app` owns the database's clean-up after the test; this second app only adds the proxy.
    proxied = create_app(dataclasses.replace(app_config, PROXY_HOPS=1))
    with proxied.app_context():
        user = f.user(Role.ADMIN)
        db.session.commit()
        response = proxied.test_client().post(
            "/api/v1/auth/login",
            json={"username": user.username, "password": f.PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert response.status_code == 200
        ips = db.session.scalars(select(AuditLog.ip).where(AuditLog.action == "login")).all()
        assert ips == ["203.0.113.9"]
        db.session.remove()
        db.engine.dispose()


def test_without_a_proxy_a_forged_header_is_ignored(app, client):
    user = f.user(Role.ADMIN)
    db.session.commit()
    client.post(
        "/api/v1/auth/login",
        json={"username": user.username, "password": f.PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    ips = db.session.scalars(select(AuditLog.ip).where(AuditLog.action == "login")).all()
    assert ips == ["127.0.0.1"]
