"""The migrations build exactly the schema the models describe, and can be undone.

The session fixture (`migrated_database`) already upgrades an empty database to head; these
tests check what that produced and that the way back works too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import Connection, create_engine, inspect, text

from app import create_app
from app.extensions import db, migrate
from app.models import APPEND_ONLY_TABLES
from tests.conftest import PG_URL

if TYPE_CHECKING:
    from config import TestingConfig

_TRIGGER_EVENT = re.compile(r"\b(?:BEFORE|AFTER|INSTEAD OF)\s+(INSERT|UPDATE|DELETE)\b")

# A scratch schema (PostgreSQL) for building the models' own schema beside the migrated one.
MODELS_SCHEMA = "bk_models_reference"


def schema_objects(conn: Connection) -> list[str]:
    """Everything the application put in the database (Alembic's own table aside)."""
    found = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
    if conn.dialect.name == "sqlite":
        found += conn.scalars(
            text(
                "SELECT type || ' ' || name FROM sqlite_master"
                " WHERE type IN ('trigger', 'index') AND tbl_name <> 'alembic_version'"
            )
        ).all()
    else:
        found += conn.scalars(
            text(
                "SELECT 'function ' || p.proname FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                " UNION ALL SELECT 'sequence ' || c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'S'"
            )
        ).all()
    return sorted(found)


def append_only_triggers(conn: Connection) -> dict[str, set[str]]:
    """Which statements a trigger refuses, per table."""
    if conn.dialect.name == "sqlite":
        definitions = conn.execute(
            text("SELECT tbl_name, upper(sql) FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        rows = [(table, _TRIGGER_EVENT.search(sql).group(1)) for table, sql in definitions]
    else:
        rows = conn.execute(
            text(
                "SELECT event_object_table, event_manipulation"
                " FROM information_schema.triggers WHERE trigger_schema = 'public'"
            )
        ).all()
    found: dict[str, set[str]] = {}
    for table, event in rows:
        found.setdefault(table, set()).add(event)
    return found


@pytest.fixture
def migrating_app(app_config: TestingConfig) -> Iterator[Flask]:
    """An app on its own migrated database (SQLite: a fresh copy; PostgreSQL: bk_test_a),
    left at head afterwards whatever the test did, for the tests that follow."""
    app = create_app(app_config)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            upgrade()
            db.engine.dispose()


def head_revision() -> str:
    script = ScriptDirectory.from_config(migrate.get_config())
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_database_is_migrated_to_head(app):
    assert current_revision() == head_revision()


def test_downgrade_to_base_removes_every_object_of_the_schema(migrating_app):
    downgrade(revision="base")
    with db.engine.connect() as conn:
        assert schema_objects(conn) == []
    assert current_revision() is None


def test_upgrade_after_a_downgrade_rebuilds_the_schema(migrating_app):
    with db.engine.connect() as conn:
        before = schema_objects(conn)
    downgrade(revision="base")
    upgrade()
    with db.engine.connect() as conn:
        assert schema_objects(conn) == before
        assert set(inspect(conn).get_table_names()) == {*db.metadata.tables, "alembic_version"}
    assert current_revision() == head_revision()


def test_the_migrated_schema_matches_the_models(app):
    # The same comparison `flask db migrate` makes (the app's Migrate uses compare_type=True).
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


@pytest.fixture
def models_schema_checks(app, tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """The CHECK constraints of a schema built straight from the models (`create_all`), as the
    database reports them, so they can be compared with the migrated ones word for word."""
    if PG_URL:
        engine = db.engine
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {MODELS_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {MODELS_SCHEMA}"))
            db.metadata.create_all(
                conn.execution_options(schema_translate_map={None: MODELS_SCHEMA})
            )
        schema = MODELS_SCHEMA
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'models.sqlite3'}")
        db.metadata.create_all(engine)
        schema = None
    try:
        with engine.connect() as conn:
            yield check_constraints(conn, schema)
    finally:
        if PG_URL:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {MODELS_SCHEMA} CASCADE"))
        else:
            engine.dispose()


def check_constraints(conn: Connection, schema: str | None = None) -> dict[str, dict[str, str]]:
    inspector = inspect(conn)
    return {
        table: {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table, schema)}
        for table in db.metadata.tables
    }


def test_the_migrated_check_constraints_read_as_in_the_models(app, models_schema_checks):
    # Autogenerate does not compare CHECK constraints; compare them as the database sees them.
    with db.engine.connect() as conn:
        migrated = check_constraints(conn)
    assert migrated == models_schema_checks
    assert sum(len(checks) for checks in migrated.values()) > 0


def test_the_history_tables_have_append_only_triggers(app):
    with db.engine.connect() as conn:
        triggers = append_only_triggers(conn)
    assert triggers == {table: {"UPDATE", "DELETE"} for table in APPEND_ONLY_TABLES}


def test_upgrading_to_review_rounds_keeps_each_notices_last_review_on_its_round(migrating_app):
    """0004 on a database with reviewed and escalated notices: the review the notice kept
    (mode, snapshot) goes to the round it was made on, and an escalated notice still needs its
    on-site visit."""
    downgrade(revision="0003")
    now = datetime.now(UTC)
    rows = [
        "INSERT INTO districts (id, code, name) VALUES (1, '460108', '美兰区')",
        "INSERT INTO agencies (id, name, kind, district_id, notice_prefix)"
        " VALUES (1, '美兰区市场监督管理局', 'market_regulation', 1, '美兰市监整')",
        "INSERT INTO centres (id, name, district_id, address, status, status_changed_at,"
        " created_at) VALUES (1, '阳光小树苗托管中心', 1, '', 'live', :now, :now)",
        "INSERT INTO users (id, role, username, display_name, agency_id, centre_id, is_active,"
        " failed_logins, created_at) VALUES"
        " (1, 'inspector', 'wang', '王监管', 1, NULL, true, 0, :now),"
        " (2, 'operator', 'li', '李经营', NULL, 1, true, 0, :now)",
        "INSERT INTO rectification_notices (id, agency_id, centre_id, status, year, seq, number,"
        " legal_basis, requirements, deadline, deadline_provisional, issuer_id, created_at,"
        " review_mode) VALUES"
        " (1, 1, 1, 'verified', 2026, 1, 'N1', '', '加盖', '2026-12-01', false, 1, :now,"
        " 'on_site'),"
        " (2, 1, 1, 'escalated', 2026, 2, 'N2', '', '加盖', '2026-11-01', false, 1, :now, NULL)",
        "INSERT INTO notice_responses (notice_id, round, author_id, text, submitted_at,"
        " reviewed_at, reviewer_id, accepted) VALUES"
        " (1, 1, 2, '已整改', :now, :now, 1, false),"
        " (1, 2, 2, '再次整改', :now, :now, 1, true)",
        "INSERT INTO notice_events (notice_id, from_status, to_status, at) VALUES"
        " (2, 'overdue', 'escalated', :now)",
    ]
    with db.engine.begin() as conn:
        for statement in rows:
            conn.execute(text(statement), {"now": now})
    upgrade()
    with db.engine.begin() as conn:
        rounds = conn.execute(
            text("SELECT round, review_mode FROM notice_responses ORDER BY round")
        ).all()
        onsite = dict(
            conn.execute(text("SELECT id, onsite_required FROM rectification_notices")).all()
        )
        supervisors = conn.scalar(text("SELECT count(*) FROM users WHERE is_supervisor"))
    assert [tuple(r) for r in rounds] == [(1, None), (2, "on_site")]
    assert {k: bool(v) for k, v in onsite.items()} == {1: False, 2: True}
    assert supervisors == 0
    # And back, with the rows still there (no table is rebuilt under them).
    downgrade(revision="0003")
    with db.engine.begin() as conn:
        assert conn.scalar(text("SELECT count(*) FROM notice_responses")) == 2
        if PG_URL:
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
