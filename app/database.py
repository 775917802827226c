"""Connection set-up shared by every engine.

SQLite: WAL, enforced foreign keys, and transactions that SQLAlchemy (not the sqlite3 module)
begins — so a write transaction can begin IMMEDIATE. A deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got in between (WAL cannot
upgrade a stale snapshot); taking the write lock up front makes concurrent writers queue on the
busy timeout instead.
"""

from __future__ import annotations

import sqlite3
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

write_transaction: ContextVar[bool] = ContextVar("write_transaction", default=False)


@event.listens_for(Engine, "connect")
def _on_connect(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
    if isinstance(dbapi_connection, sqlite3.Connection):
        # Let SQLAlchemy emit BEGIN itself (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _on_begin(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write_transaction.get() else "BEGIN")
