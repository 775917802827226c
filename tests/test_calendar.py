"""Working-day deadlines on the Chinese statutory calendar, kept as data."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.errors import Unprocessable
from app.extensions import db
from app.models import CalendarDay, CalendarYear, Role
from app.services import calendar
from app.services.base import transaction

D = dt.date


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        # National Day 2026: 1–7 October off; Thursday the 8th is the first workday after.
        (D(2026, 9, 30), 1, D(2026, 10, 8)),
        # …and Saturday 10 October is an adjusted workday (调休上班).
        (D(2026, 9, 30), 3, D(2026, 10, 10)),
        # Sunday 20 September 2026 is an adjusted workday before the holiday.
        (D(2026, 9, 18), 1, D(2026, 9, 20)),
        # Mid-autumn Festival: Friday 25 September is a holiday.
        (D(2026, 9, 24), 1, D(2026, 9, 28)),
        # An ordinary week: Monday + 5 working days = next Monday.
        (D(2026, 11, 2), 5, D(2026, 11, 9)),
    ],
)
def test_working_days_skip_holidays_and_count_adjusted_workdays(app, start, count, expected):
    result = calendar.add_working_days(start, count)
    assert result.day == expected
    assert result.provisional is False


def test_a_year_without_a_published_schedule_counts_monday_to_friday_provisionally(app):
    # chinese-calendar knows up to 2026; a 15-day clock from mid-December reaches 2027.
    result = calendar.add_working_days(D(2026, 12, 30), 5)
    assert result.day == D(2027, 1, 6)  # 31 Dec, then Fri 1 Jan counted as a workday …
    assert result.provisional is True


def test_an_admin_enters_next_year_and_deadlines_become_final(app):
    with transaction():
        calendar.set_year(2027, holidays=[D(2027, 1, 1)], workdays=[], source="admin")
    result = calendar.add_working_days(D(2026, 12, 30), 5)
    assert result.day == D(2027, 1, 7)
    assert result.provisional is False


def test_the_library_schedule_is_copied_once_as_data(app):
    calendar.add_working_days(D(2026, 9, 30), 1)
    calendar.add_working_days(D(2026, 9, 30), 2)
    db.session.commit()
    assert db.session.get(CalendarYear, 2026).source == "chinese-calendar"
    national_day = db.session.scalar(select(CalendarDay).where(CalendarDay.day == D(2026, 10, 1)))
    assert national_day.is_workday is False
    assert national_day.name == "国庆节"
    count = db.session.scalar(
        select(func.count()).select_from(CalendarDay).where(CalendarDay.year == 2026)
    )
    assert count > 10


def test_an_admin_correction_overrides_the_copied_schedule(app):
    calendar.add_working_days(D(2026, 11, 2), 1)
    with transaction():
        calendar.set_year(2026, holidays=[D(2026, 11, 3)], workdays=[], source="admin")
    assert calendar.add_working_days(D(2026, 11, 2), 1).day == D(2026, 11, 4)


@pytest.mark.parametrize("count", [0, -1, 366])
def test_a_working_day_count_out_of_range_is_refused(app, count):
    with pytest.raises(Unprocessable):
        calendar.add_working_days(D(2026, 11, 2), count)


def test_a_day_from_another_year_is_refused_in_a_schedule(app):
    with pytest.raises(Unprocessable):
        calendar.set_year(2027, holidays=[D(2026, 12, 31)], workdays=[], source="admin")


def test_an_admin_publishes_next_year_through_the_api(app, client):
    from tests import factories as f

    admin = f.user(Role.ADMIN)
    inspector_agency = f.agency(f.district())
    inspector = f.inspector_of(inspector_agency)
    db.session.commit()
    body = {"holidays": ["2027-01-01"], "workdays": []}
    refused = client.put(
        "/api/v1/admin/calendar/2027", json=body, headers=f.login(client, inspector.username)
    )
    assert refused.status_code == 403
    response = client.put(
        "/api/v1/admin/calendar/2027", json=body, headers=f.login(client, admin.username)
    )
    assert response.status_code == 200
    result = calendar.add_working_days(D(2026, 12, 30), 5)
    assert (result.day, result.provisional) == (D(2027, 1, 7), False)
