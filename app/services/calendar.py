"""Working days on the Chinese statutory calendar, kept as data.

A year's schedule (weekday holidays and weekend make-up workdays) is copied from
chinese-calendar the first time it is needed, and an admin can enter it for a year the library
does not know yet (the State Council publishes each schedule late in the year before). For a
year with no schedule, days count Monday–Friday and the result is marked provisional.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.errors import Unprocessable
from app.extensions import db
from app.models import CalendarDay, CalendarYear, Role, User, utcnow
from app.services import audit
from app.services.base import transaction
from app.services.scope import require_role

MAX_WORKING_DAYS = 365
_HOLIDAY_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}


@dataclass(frozen=True)
class WorkingDayResult:
    day: dt.date
    provisional: bool  # True when a year without a published schedule was counted Mon–Fri


def _library_schedule(year: int) -> list[tuple[dt.date, bool, str]] | None:
    """Days of `year` that break the Monday–Friday rule, from chinese-calendar (or None)."""
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    try:
        chinese_calendar.is_workday(start)
    except NotImplementedError:
        return None
    out = []
    day = start
    while day <= end:
        weekday_rule = day.weekday() < 5
        on, name = chinese_calendar.get_holiday_detail(day)
        is_workday = not on
        if is_workday != weekday_rule:
            out.append((day, is_workday, _HOLIDAY_NAMES.get(name, name or "")))
        day += dt.timedelta(days=1)
    return out


def ensure_year(year: int) -> bool:
    """Make sure `year`'s schedule is in the database when one is known; True if it is."""
    if db.session.get(CalendarYear, year) is not None:
        return True
    schedule = _library_schedule(year)
    if schedule is None:
        return False
    # Two requests may copy the same year at once: a savepoint lets the loser carry on.
    try:
        with db.session.begin_nested():
            db.session.add(CalendarYear(year=year, source="chinese-calendar"))
            db.session.flush()
            for day, is_workday, name in schedule:
                db.session.add(CalendarDay(day=day, year=year, is_workday=is_workday, name=name))
            db.session.flush()
    except IntegrityError:
        pass
    return True


def set_year(year: int, holidays: list[dt.date], workdays: list[dt.date], source: str) -> None:
    """Replace a year's schedule (admin entry). Runs inside the caller's transaction."""
    for day in [*holidays, *workdays]:
        if day.year != year:
            raise Unprocessable(f"{day.isoformat()} 不在 {year} 年", field="days")
    if set(holidays) & set(workdays):
        raise Unprocessable("同一天不能既是假日又是工作日", field="days")
    row = db.session.get(CalendarYear, year)
    if row is None:
        db.session.add(CalendarYear(year=year, source=source))
    else:
        row.source, row.updated_at = source, utcnow()
    db.session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    db.session.flush()
    for day in holidays:
        if day.weekday() < 5:
            db.session.add(CalendarDay(day=day, year=year, is_workday=False, name="法定节假日"))
    for day in workdays:
        if day.weekday() >= 5:
            db.session.add(CalendarDay(day=day, year=year, is_workday=True, name="调休上班"))
    db.session.flush()


class _Calendar:
    """Answers is-workday for a run of days with one query per year."""

    def __init__(self) -> None:
        self._years: dict[int, tuple[bool, dict[dt.date, bool]]] = {}

    def _year(self, year: int) -> tuple[bool, dict[dt.date, bool]]:
        if year not in self._years:
            known = ensure_year(year)
            overrides = {
                row.day: row.is_workday
                for row in db.session.scalars(select(CalendarDay).where(CalendarDay.year == year))
            }
            self._years[year] = (known, overrides)
        return self._years[year]

    def is_workday(self, day: dt.date) -> tuple[bool, bool]:
        """(is it a workday, is that answer provisional)."""
        known, overrides = self._year(day.year)
        return overrides.get(day, day.weekday() < 5), not known


def is_workday(day: dt.date) -> bool:
    return _Calendar().is_workday(day)[0]


def add_working_days(start: dt.date, count: int) -> WorkingDayResult:
    """The `count`-th working day after `start` (the start day itself is not counted)."""
    if not 1 <= count <= MAX_WORKING_DAYS:
        raise Unprocessable(f"工作日数应在 1 到 {MAX_WORKING_DAYS} 之间", field="working_days")
    calendar = _Calendar()
    day, remaining, provisional = start, count, False
    while remaining:
        day += dt.timedelta(days=1)
        workday, guessed = calendar.is_workday(day)
        provisional = provisional or guessed
        if workday:
            remaining -= 1
    return WorkingDayResult(day=day, provisional=provisional)


def publish_year(admin: User, year: int, holidays: list[dt.date], workdays: list[dt.date]) -> dict:
    """An admin enters a year's schedule (one transaction, audited)."""
    require_role(admin, Role.ADMIN)
    if not 2004 <= year <= 2100:
        raise Unprocessable("年份超出范围", field="year")
    with transaction():
        set_year(year, holidays, workdays, source="admin")
        audit.record(
            "calendar.year_set",
            actor_id=admin.id,
            object_type="calendar_year",
            object_id=year,
            holidays=len(holidays),
            workdays=len(workdays),
        )
    return {"year": year, "source": "admin", "holidays": len(holidays), "workdays": len(workdays)}
