"""The unit of work every write path runs in, and domain events published after commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.database import write_transaction
from app.extensions import db

EventSubscriber = Callable[[str, dict[str, Any]], None]
_subscribers: list[EventSubscriber] = []


@contextmanager
def transaction() -> Iterator[Session]:
    """One write path = one transaction: commit on success, roll back everything on error.

    On SQLite the transaction takes the write lock when it begins (see app.database), so a
    read transaction left open by the request (e.g. loading the signed-in user) is ended first.
    """
    session = db.session()  # the Session behind the scoped proxy
    if session.get_bind().dialect.name == "sqlite" and session.in_transaction():
        session.commit()
    token = write_transaction.set(True)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        write_transaction.reset(token)


def publish(name: str, **data: Any) -> None:
    """Queue a domain event; it reaches subscribers only if the transaction commits."""
    db.session.info.setdefault("pending_events", []).append((name, data))


def subscribe(subscriber: EventSubscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: EventSubscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


@event.listens_for(Session, "after_commit")
def _deliver_events(session: Session) -> None:
    pending = session.info.pop("pending_events", [])
    for name, data in pending:
        for subscriber in list(_subscribers):
            subscriber(name, data)


@event.listens_for(Session, "after_rollback")
def _drop_events(session: Session) -> None:
    session.info.pop("pending_events", None)
