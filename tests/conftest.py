"""Fixtures: an app on a real database (SQLite by default; PostgreSQL when
`TEST_DATABASE_URL` is set), migrated once per session with Alembic and emptied between tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, text

from app import create_app
from app.extensions import db
from config import TestingConfig

PG_URL = os.environ.get("TEST_DATABASE_URL")

# Fixtures of the browser tests (a served app, an HLS stream, chromium): tests/web_support.py.
pytest_plugins = ["tests.web_support"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'postgresql' if PG_URL else 'sqlite'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite runs twice, on SQLite then on PostgreSQL. A test that never reaches the
    database (no `migrated_database` among its fixtures, and a module that does not open
    PostgreSQL itself) gains nothing from the second run: it runs once, on SQLite."""
    if not PG_URL:
        return
    once = pytest.mark.skip(reason="does not touch the database: run once, on SQLite")
    for item in items:
        module = getattr(item, "module", None)
        opens_database_itself = module is not None and hasattr(module, "PG_URL")
        if not opens_database_itself and not _needs("migrated_database", item):
            item.add_marker(once)


def _needs(fixture: str, item: pytest.Item) -> bool:
    """Whether the item's fixtures reach `fixture`, through every definition of each name: a
    fixture that overrides another of its name (`app_config(app_config, stubs)`) hides the
    overridden one's arguments from `item.fixturenames`."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True  # not a plain test function: assume it does
    seen: set[str] = set()
    waiting = list(item.fixturenames)
    while waiting:
        name = waiting.pop()
        if name == fixture:
            return True
        if name in seen:
            continue
        seen.add(name)
        for definition in info.name2fixturedefs.get(name, ()):
            waiting.extend(definition.argnames)
    return False


def make_config(instance: Path, database_url: str | None, **overrides) -> TestingConfig:
    return TestingConfig(
        INSTANCE_PATH=str(instance),
        DATABASE_URL=database_url,
        HLS_ROOT=str(instance / "hls"),
        **overrides,
    )


def _reset_postgres_schema(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Run every migration once from an empty database.

    SQLite: into a template file that each test copies. PostgreSQL: into the test database,
    which each test truncates afterwards.
    """
    instance = tmp_path_factory.mktemp("template")
    if PG_URL:
        _reset_postgres_schema(PG_URL)
    app = create_app(make_config(instance, PG_URL))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield None if PG_URL else str(instance / "bright_kitchen.sqlite3")


@pytest.fixture
def app_config(tmp_path: Path, migrated_database: str | None) -> TestingConfig:
    if migrated_database is not None:
        shutil.copy(migrated_database, tmp_path / "bright_kitchen.sqlite3")
    return make_config(tmp_path, PG_URL)


@pytest.fixture
def app(app_config: TestingConfig) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()
        if PG_URL:
            # TRUNCATE does not fire the row triggers that keep history tables append-only.
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@contextmanager
def count_statements() -> Iterator[list[str]]:
    """The SQL statements run inside the block: a page whose count grows with the rows it
    shows runs a query per row."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
