"""The migrations build exactly the schema the models describe, and can be undone.

The session fixture (`migrated_database`) already upgrades an empty database to head; these
tests check what that produced and that the way back works too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
