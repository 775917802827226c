"""The schema keeps the domain's rules by itself, on SQLite and on PostgreSQL.

Each refusal is checked at the database: the IntegrityError must come from the database at
flush or execute, and name the constraint (or trigger) that refused the row. Plain SQL is used
where the ORM would otherwise stop a bad value first (enum validation), so the test shows the
database's own constraint holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.models import (
    APPEND_ONLY_TABLES,
    Agency,
    AreaKind,
    Attachment,
    AttachmentKind,
    AuditLog,
    Camera,
    Centre,
    Channel,
    ChecklistItem,
    ChecklistItemKind,
    ChecklistResult,
    ChecklistStandard,
    Commissioning,
    Concern,
    InboundMessage,
    InviteCode,
    MealWindow,
    NoticeResponse,
    NoticeStatus,
    Notification,
    ParentLink,
    RectificationNotice,
    Role,
    User,
    WatchSession,
)
from app.secrets import redact
from app.services.cameras import register_camera, stream_url
from tests import factories as f

BEIJING = timezone(timedelta(hours=8))


# --- how a refusal is recognised -------------------------------------------------------------


def _constraint(name: str):
    for table in db.metadata.tables.values():
        for constraint in table.constraints:
            if constraint.name == name:
                return table, constraint
    raise LookupError(f"no constraint {name!r} in the models")


def _database_wording(name: str) -> str:
    """What the database says when `name` (a constraint of the models) refuses a row."""
    if db.engine.dialect.name == "postgresql":
        return f'"{name}"'
    table, constraint = _constraint(name)
    if isinstance(constraint, UniqueConstraint):
        columns = ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
        return f"UNIQUE constraint failed: {columns}"
    if isinstance(constraint, ForeignKeyConstraint):
        return "FOREIGN KEY constraint failed"  # SQLite does not say which one
    assert isinstance(constraint, CheckConstraint)
    return f"CHECK constraint failed: {name}"


@contextmanager
def refused(constraint: str) -> Iterator[None]:
    """The block (flushed at its end) must be refused by the database, naming `constraint`."""
    with pytest.raises(IntegrityError) as caught:
        yield
        db.session.flush()
    db.session.rollback()
    assert _database_wording(constraint) in str(caught.value.orig)


@contextmanager
def refused_as_append_only(table: str) -> Iterator[None]:
    with pytest.raises(IntegrityError) as caught:
        yield
    db.session.rollback()
    assert f"table {table} is append-only" in str(caught.value.orig)


def sql(statement: str, **params):
    return db.session.execute(text(statement), params)


# --- a small world to hang rows on ----------------------------------------------------------


@dataclass
class World:
    agency: Agency
    centre: Centre
    camera: Camera
    operator: User
    inspector: User
    parent: User


@pytest.fixture
def world(app) -> World:
    meilan = f.district()
    centre = f.centre(meilan)
    agency = f.agency(meilan)
    built = World(
        agency=agency,
        centre=centre,
        camera=f.camera(centre),
        operator=f.operator_of(centre),
        inspector=f.inspector_of(agency),
        parent=f.parent_of(centre),
    )
    db.session.commit()
    return built


def notice(w: World, seq: int, year: int = 2026, **fields) -> RectificationNotice:
    fields.setdefault("status", NoticeStatus.ISSUED)
    fields.setdefault("number", f"{w.agency.notice_prefix}〔{year}〕{seq}号")
    fields.setdefault("deadline", date(year, 3, 20))
    row = RectificationNotice(
        agency_id=w.agency.id,
        centre_id=w.centre.id,
        issuer_id=w.inspector.id,
        year=year,
        seq=seq,
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def concern(w: World, client_key: str = "c-1", parent: User | None = None) -> Concern:
    row = Concern(
        centre_id=w.centre.id,
        parent_id=(parent or w.parent).id,
        client_key=client_key,
        text="厨房地面有积水",
        decide_by=date(2026, 3, 11),
        resolve_by=date(2026, 3, 23),
    )
    db.session.add(row)
    db.session.flush()
    return row


def invite_code(w: World, code: str = "MEILAN01", **fields) -> InviteCode:
    row = InviteCode(
        centre_id=w.centre.id,
        code=code,
        created_by_id=w.operator.id,
        expires_at=datetime(2026, 6, 30, tzinfo=UTC),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def notification(key: str = "notice.issued:1:7", **fields) -> Notification:
    fields.setdefault("destination", "meilan-inspectors")
    row = Notification(
        idempotency_key=key,
        channel=Channel.WECOM_ROBOT,
        event="notice.issued",
        payload={"notice_id": 1},
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def inbound(channel: Channel, dedupe_key: str) -> InboundMessage:
    row = InboundMessage(
        channel=channel,
        dedupe_key=dedupe_key,
        sender="openid-1",
        msg_type="text",
        payload={"Content": "厨房有老鼠"},
    )
    db.session.add(row)
    db.session.flush()
    return row


# --- uniqueness ------------------------------------------------------------------------------


def test_an_invite_code_is_unique(world):
    invite_code(world, "MEILAN01")
    with refused("uq_invite_codes_code"):
        invite_code(world, "MEILAN01")


@pytest.mark.parametrize("identity", ["username", "wechat_openid", "wxa_openid", "wecom_userid"])
def test_a_login_identity_belongs_to_one_user(app, identity):
    f.user(Role.PARENT, **{identity: "same-person"})
    with refused(f"uq_users_{identity}"):
        f.user(Role.PARENT, **{identity: "same-person"})


def test_a_parent_is_linked_to_a_centre_once(world):
    with refused("uq_parent_links_parent_id_centre_id"):
        db.session.add(ParentLink(parent_id=world.parent.id, centre_id=world.centre.id))


def test_a_retried_concern_submit_with_the_same_client_key_is_refused(world):
    concern(world, client_key="submit-42")
    with refused("uq_concerns_parent_id_client_key"):
        concern(world, client_key="submit-42")


def test_two_parents_may_use_the_same_client_key(world):
    other_parent = f.parent_of(world.centre)
    concern(world, client_key="submit-42")
    concern(world, client_key="submit-42", parent=other_parent)
    db.session.commit()
    assert db.session.scalar(select(func.count(Concern.id))) == 2


def test_a_retried_chat_callback_is_stored_once(app):
    inbound(Channel.WECHAT_MP, "msgid:24061312345")
    with refused("uq_inbound_messages_channel_dedupe_key"):
        inbound(Channel.WECHAT_MP, "msgid:24061312345")


def test_the_same_message_key_on_another_channel_is_another_message(app):
    inbound(Channel.WECHAT_MP, "msgid:24061312345")
    inbound(Channel.WECOM_APP, "msgid:24061312345")
    db.session.commit()
    assert db.session.scalar(select(func.count(InboundMessage.id))) == 2


def test_a_notification_is_queued_once_per_idempotency_key(app):
    notification("notice.issued:1:7")
    with refused("uq_notifications_idempotency_key"):
        notification("notice.issued:1:7")


def test_a_notice_sequence_number_is_used_once_per_agency_and_year(world):
    notice(world, seq=17)
    with refused("uq_rectification_notices_agency_id_year_seq"):
        notice(world, seq=17, number="美兰市监整〔2026〕17号-bis")


def test_the_notice_sequence_starts_again_each_year(world):
    notice(world, seq=1, year=2026)
    notice(world, seq=1, year=2027)
    db.session.commit()
    assert db.session.scalar(select(func.count(RectificationNotice.id))) == 2


def test_a_notice_number_is_unique(world):
    notice(world, seq=17)
    with refused("uq_rectification_notices_number"):
        notice(world, seq=18, number="美兰市监整〔2026〕17号")


def test_a_notice_has_one_response_per_round(world):
    issued = notice(world, seq=1)
    db.session.add(
        NoticeResponse(notice_id=issued.id, round=1, author_id=world.operator.id, text="已整改")
    )
    db.session.flush()
    with refused("uq_notice_responses_notice_id_round"):
        db.session.add(
            NoticeResponse(notice_id=issued.id, round=1, author_id=world.operator.id, text="再答")
        )


def test_response_rounds_start_at_one(world):
    issued = notice(world, seq=1)
    with refused("ck_notice_responses_round_positive"):
        db.session.add(
            NoticeResponse(notice_id=issued.id, round=0, author_id=world.operator.id, text="已整改")
        )


# --- foreign keys ----------------------------------------------------------------------------


def test_a_camera_of_a_centre_that_does_not_exist_is_refused(world):
    area = world.centre.areas[0]
    with refused("fk_cameras_centre_id_centres"):
        db.session.add(
            Camera(
                centre_id=world.centre.id + 1000,
                area_id=area.id,
                name="幽灵摄像头",
                rtsp_url_encrypted="x",
                rtsp_url_redacted="rtsp://192.0.2.1/ghost",
            )
        )


def test_deleting_a_centre_deletes_its_meal_windows(app):
    centre = f.centre(f.district(), with_rooms=False)
    db.session.add(
        MealWindow(centre_id=centre.id, label="午餐", starts_at=time(11), ends_at=time(13))
    )
    db.session.commit()
    centre_id = centre.id
    db.session.expunge_all()  # the ORM must not do the cascade for the database
    sql("DELETE FROM centres WHERE id = :id", id=centre_id)
    db.session.commit()
    assert db.session.scalar(select(func.count(MealWindow.id))) == 0


# --- enumerations are CHECK constraints ------------------------------------------------------


def test_an_unknown_centre_status_is_refused_by_the_database(world):
    with refused("ck_centres_centre_status"):
        sql(
            "INSERT INTO centres"
            " (name, district_id, address, status, status_changed_at, created_at) VALUES"
            " ('假中心', :district, '', 'bogus', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            district=world.centre.district_id,
        )


ENUM_COLUMNS: dict[str, Callable[[World], int]] = {
    "users.role:ck_users_user_role": lambda w: w.operator.id,
    "cameras.status:ck_cameras_camera_status": lambda w: w.camera.id,
    "kitchen_areas.kind:ck_kitchen_areas_area_kind": lambda w: w.centre.areas[0].id,
    "agencies.kind:ck_agencies_agency_kind": lambda w: w.agency.id,
}


@pytest.mark.parametrize("column", ENUM_COLUMNS)
def test_an_unknown_enum_value_is_refused_by_the_database(world, column):
    target, constraint = column.split(":")
    table, name = target.split(".")
    row_id = ENUM_COLUMNS[column](world)
    with refused(constraint):
        sql(f"UPDATE {table} SET {name} = 'bogus' WHERE id = :id", id=row_id)


def test_an_unknown_notice_status_is_refused_by_the_database(world):
    row_id = notice(world, seq=1).id
    db.session.commit()
    with refused("ck_rectification_notices_notice_status"):
        sql("UPDATE rectification_notices SET status = 'closed' WHERE id = :id", id=row_id)


# --- invite codes and meal windows -----------------------------------------------------------


def test_an_invite_code_must_allow_at_least_one_use(world):
    with refused("ck_invite_codes_max_uses_positive"):
        invite_code(world, max_uses=0)


def test_an_invite_code_may_be_used_up_to_its_limit(world):
    invite_code(world, max_uses=2, uses=2)
    db.session.commit()
    assert db.session.scalar(select(InviteCode.uses)) == 2


def test_an_invite_code_cannot_be_used_more_than_its_limit(world):
    row_id = invite_code(world, max_uses=2, uses=2).id
    db.session.commit()
    with refused("ck_invite_codes_uses_within_limit"):
        sql("UPDATE invite_codes SET uses = uses + 1 WHERE id = :id", id=row_id)


@pytest.mark.parametrize(
    ("starts_at", "ends_at"), [(time(13, 0), time(11, 30)), (time(12, 0), time(12, 0))]
)
def test_a_meal_window_must_start_before_it_ends(world, starts_at, ends_at):
    with refused("ck_meal_windows_starts_before_ends"):
        db.session.add(
            MealWindow(
                centre_id=world.centre.id, label="午餐", starts_at=starts_at, ends_at=ends_at
            )
        )


def test_a_meal_window_weekday_is_monday_to_sunday(world):
    with refused("ck_meal_windows_weekday"):
        db.session.add(
            MealWindow(
                centre_id=world.centre.id,
                label="午餐",
                weekday=7,
                starts_at=time(11, 30),
                ends_at=time(13, 0),
            )
        )


# --- people ----------------------------------------------------------------------------------


def test_an_operator_must_belong_to_a_centre(app):
    with refused("ck_users_operator_has_centre"):
        f.user(Role.OPERATOR)


def test_an_inspector_must_belong_to_an_agency(app):
    with refused("ck_users_inspector_has_agency"):
        f.user(Role.INSPECTOR)


def test_a_user_needs_a_way_to_log_in(app):
    with refused("ck_users_has_login"):
        f.user(Role.TECHNICIAN, username=None)


def test_a_parent_known_only_by_the_mini_program_can_be_stored(app):
    # What a first `wx.login` creates (app.services.auth.login_miniprogram).
    db.session.add(User(role=Role.PARENT, wxa_openid="o-wxa-1", display_name="家长"))
    db.session.commit()
    assert db.session.scalar(select(User.wxa_openid)) == "o-wxa-1"


# --- rectification notices -------------------------------------------------------------------

NUMBERED_STATUSES = [
    s for s in NoticeStatus if s not in (NoticeStatus.DRAFT, NoticeStatus.WITHDRAWN)
]


@pytest.mark.parametrize("status", NUMBERED_STATUSES)
def test_a_notice_past_draft_must_have_a_number(world, status):
    with refused("ck_rectification_notices_issued_has_number"):
        notice(world, seq=1, status=status, number=None)


@pytest.mark.parametrize("status", NUMBERED_STATUSES)
def test_a_notice_past_draft_must_have_a_deadline(world, status):
    with refused("ck_rectification_notices_issued_has_deadline"):
        notice(world, seq=1, status=status, deadline=None)


@pytest.mark.parametrize("status", [NoticeStatus.DRAFT, NoticeStatus.WITHDRAWN])
def test_a_draft_or_withdrawn_notice_needs_no_number_or_deadline(world, status):
    notice(world, seq=None, year=2026, status=status, number=None, deadline=None)
    db.session.commit()
    assert db.session.scalar(select(RectificationNotice.status)) is status


# --- attachments -----------------------------------------------------------------------------


@pytest.fixture
def owners(world) -> dict[str, int]:
    """One possible owner of each kind: a notice response, a concern, a checklist result."""
    response = NoticeResponse(
        notice_id=notice(world, seq=1).id, round=1, author_id=world.operator.id, text="已整改"
    )
    standard = ChecklistStandard(version="2026.1", title="明厨亮灶安装规范")
    db.session.add_all([response, standard])
    db.session.flush()
    item = ChecklistItem(
        standard_id=standard.id, code="signage_photo", title="公示牌", kind=ChecklistItemKind.MANUAL
    )
    commissioning = Commissioning(centre_id=world.centre.id, standard_id=standard.id)
    db.session.add_all([item, commissioning])
    db.session.flush()
    result = ChecklistResult(commissioning_id=commissioning.id, item_id=item.id, passed=True)
    db.session.add(result)
    db.session.flush()
    ids = {
        "notice_response_id": response.id,
        "concern_id": concern(world).id,
        "checklist_result_id": result.id,
    }
    db.session.commit()
    return ids


def attachment(**owner_ids: int) -> Attachment:
    return Attachment(
        kind=AttachmentKind.PHOTO,
        content_type="image/jpeg",
        size_bytes=2048,
        sha256="0" * 64,
        path="uploads/2026/03/a.jpg",
        **owner_ids,
    )


@pytest.mark.parametrize("owner", ["notice_response_id", "concern_id", "checklist_result_id"])
def test_an_attachment_with_one_owner_is_stored(owners, owner):
    db.session.add(attachment(**{owner: owners[owner]}))
    db.session.commit()
    assert db.session.scalar(select(func.count(Attachment.id))) == 1


def test_an_attachment_without_an_owner_is_refused(owners):
    with refused("ck_attachments_exactly_one_owner"):
        db.session.add(attachment())


def test_an_attachment_with_two_owners_is_refused(owners):
    with refused("ck_attachments_exactly_one_owner"):
        db.session.add(
            attachment(
                concern_id=owners["concern_id"], notice_response_id=owners["notice_response_id"]
            )
        )


# --- notifications and watch sessions --------------------------------------------------------


def test_a_notification_needs_a_recipient_or_a_destination(app):
    with refused("ck_notifications_has_recipient"):
        notification(destination=None, recipient_id=None)


def test_a_group_notification_needs_only_a_destination(app):
    notification(destination="meilan-inspectors", recipient_id=None)
    db.session.commit()
    assert db.session.scalar(select(Notification.destination)) == "meilan-inspectors"


def test_a_watch_session_cannot_end_before_it_starts(world):
    # 19:30 in Beijing is 11:30 UTC: half an hour before the start, whatever the wall clock says.
    with refused("ck_watch_sessions_ends_after_start"):
        db.session.add(
            WatchSession(
                user_id=world.parent.id,
                camera_id=world.camera.id,
                started_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
                ended_at=datetime(2026, 3, 2, 19, 30, tzinfo=BEIJING),
            )
        )


def test_a_watch_session_end_is_compared_as_an_instant(world):
    # 12:30 UTC is after 20:00 in Beijing (12:00 UTC), though its wall clock reads earlier.
    db.session.add(
        WatchSession(
            user_id=world.parent.id,
            camera_id=world.camera.id,
            started_at=datetime(2026, 3, 2, 20, 0, tzinfo=BEIJING),
            ended_at=datetime(2026, 3, 2, 12, 30, tzinfo=UTC),
        )
    )
    db.session.commit()
    assert db.session.scalar(select(func.count(WatchSession.id))) == 1


# --- append-only history ---------------------------------------------------------------------

HISTORY_INSERTS: dict[str, Callable[[World], object]] = {
    "notice_events": lambda w: sql(
        "INSERT INTO notice_events (notice_id, to_status, at)"
        " VALUES (:owner, 'issued', CURRENT_TIMESTAMP)",
        owner=notice(w, seq=1).id,
    ),
    "concern_events": lambda w: sql(
        "INSERT INTO concern_events (concern_id, to_status, at)"
        " VALUES (:owner, 'accepted', CURRENT_TIMESTAMP)",
        owner=concern(w).id,
    ),
    "centre_status_changes": lambda w: sql(
        "INSERT INTO centre_status_changes (centre_id, from_status, to_status, at)"
        " VALUES (:owner, 'commissioning', 'live', CURRENT_TIMESTAMP)",
        owner=w.centre.id,
    ),
    "audit_log": lambda w: sql(
        "INSERT INTO audit_log (at, action) VALUES (CURRENT_TIMESTAMP, 'login.password')"
    ),
}


def count(table: str) -> int:
    return sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


@pytest.fixture(params=APPEND_ONLY_TABLES)
def history(request, world) -> str:
    """An append-only table holding one row, written with plain SQL and committed."""
    table = request.param
    HISTORY_INSERTS[table](world)
    db.session.commit()
    return table


def test_history_accepts_new_rows(history):
    assert count(history) == 1


def test_history_rows_cannot_be_updated(history):
    with refused_as_append_only(history):
        sql(f"UPDATE {history} SET at = CURRENT_TIMESTAMP")
    assert count(history) == 1


def test_history_rows_cannot_be_deleted(history):
    with refused_as_append_only(history):
        sql(f"DELETE FROM {history}")
    assert count(history) == 1


# --- UTC datetimes ---------------------------------------------------------------------------


def test_a_datetime_reads_back_as_the_same_instant_in_utc(app):
    written = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=BEIJING)
    row = AuditLog(action="login.password", at=written)
    db.session.add(row)
    db.session.commit()
    db.session.expire_all()
    read = db.session.scalar(select(AuditLog.at).where(AuditLog.id == row.id))
    assert read == written
    assert read.utcoffset() == timedelta(0)
    assert read.replace(tzinfo=None) == datetime(2026, 3, 2, 0, 30, 15, 123456)


def test_datetimes_are_filtered_as_instants(app):
    db.session.add(AuditLog(action="login.password", at=datetime(2026, 3, 2, 0, 30, tzinfo=UTC)))
    db.session.commit()
    # 08:00 in Beijing is 00:00 UTC, before the row; compared as wall clocks it would be after.
    since = datetime(2026, 3, 2, 8, 0, tzinfo=BEIJING)
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.at >= since)) == 1


def test_a_naive_datetime_is_refused_when_stored(app):
    db.session.add(AuditLog(action="login.password", at=datetime(2026, 3, 2, 8, 30)))
    with pytest.raises(StatementError, match="naive datetime") as caught:
        db.session.flush()
    db.session.rollback()
    assert isinstance(caught.value.orig, ValueError)
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_a_naive_datetime_is_refused_in_a_query(app):
    query = select(AuditLog).where(AuditLog.at >= datetime(2026, 3, 2, 8, 30))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.scalars(query).all()


# --- camera credentials at rest --------------------------------------------------------------

CAMERA_URL = "rtsp://admin:Kx9-s3cret@192.0.2.10:554/Streaming/Channels/101"


@pytest.fixture
def registered_camera(world) -> Camera:
    cooking = next(a for a in world.centre.areas if a.kind is AreaKind.COOKING)
    technician = f.technician_for(world.centre)
    camera = register_camera(technician, world.centre.id, cooking.id, "操作间二号", CAMERA_URL)
    db.session.expire_all()  # what follows reads what the database holds
    return camera


def test_a_camera_url_is_stored_encrypted_without_its_credentials(registered_camera):
    stored = sql(
        "SELECT rtsp_url_encrypted FROM cameras WHERE id = :id", id=registered_camera.id
    ).scalar_one()
    assert "Kx9-s3cret" not in stored
    assert "admin" not in stored
    assert "192.0.2.10" not in stored


def test_the_media_supervisor_gets_the_original_url_back(registered_camera):
    assert stream_url(registered_camera) == CAMERA_URL


def test_the_stored_url_opens_only_with_the_configured_key(app, registered_camera):
    stored = sql(
        "SELECT rtsp_url_encrypted FROM cameras WHERE id = :id", id=registered_camera.id
    ).scalar_one()
    configured = app.config["CREDENTIALS_KEYS"]
    assert Fernet(configured.encode()).decrypt(stored.encode()).decode() == CAMERA_URL
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(stored.encode())
    # Key rotation: a new key first, the old one after it still opens what is stored.
    app.config["CREDENTIALS_KEYS"] = f"{Fernet.generate_key().decode()},{configured}"
    try:
        assert stream_url(registered_camera) == CAMERA_URL
        app.config["CREDENTIALS_KEYS"] = Fernet.generate_key().decode()
        with pytest.raises(RuntimeError, match="cannot be decrypted"):
            stream_url(registered_camera)
    finally:
        app.config["CREDENTIALS_KEYS"] = configured


def test_the_displayable_camera_url_has_no_credentials(registered_camera):
    assert registered_camera.rtsp_url_redacted == "rtsp://***@192.0.2.10:554/Streaming/Channels/101"


def test_registering_a_camera_audits_only_the_redacted_url(registered_camera):
    details = [str(d) for d in sql("SELECT detail FROM audit_log").scalars()]
    assert any("rtsp://***@192.0.2.10:554" in d for d in details)
    assert not any("Kx9-s3cret" in d or "admin:" in d for d in details)


def test_redact_strips_credentials_from_a_log_line():
    line = (
        "[rtsp @ 0x5581] method DESCRIBE failed: 401 Unauthorized "
        f"{CAMERA_URL}: Server returned 401"
    )
    assert redact(line) == (
        "[rtsp @ 0x5581] method DESCRIBE failed: 401 Unauthorized "
        "rtsp://***@192.0.2.10:554/Streaming/Channels/101: Server returned 401"
    )


def test_redact_strips_a_password_containing_an_at_sign():
    line = "Connection to rtsp://admin:p@ss-word@192.0.2.10:554/s1 failed"
    assert redact(line) == "Connection to rtsp://***@192.0.2.10:554/s1 failed"


# --- NOT NULL lives in the database ---------------------------------------------------------


@pytest.mark.parametrize(
    "table", ["districts", "agencies", "users", "centres", "kitchen_areas", "cameras", "notices"]
)
def test_the_database_refuses_null_in_every_required_column(world, table):
    """Every column the model says is required is NOT NULL in the database itself: setting it
    to NULL with plain SQL is refused, column by column."""
    rows = {
        "districts": ("districts", world.centre.district_id),
        "agencies": ("agencies", world.agency.id),
        "users": ("users", world.operator.id),
        "centres": ("centres", world.centre.id),
        "kitchen_areas": ("kitchen_areas", world.camera.area_id),
        "cameras": ("cameras", world.camera.id),
        "notices": ("rectification_notices", None),
    }
    name, row_id = rows[table]
    if row_id is None:
        row_id = notice(world, 1).id
        db.session.commit()
    required = [
        c.name for c in db.metadata.tables[name].columns if not c.nullable and not c.primary_key
    ]
    assert len(required) >= 2, required
    for column in required:
        with pytest.raises(IntegrityError) as caught:
            sql(f"UPDATE {name} SET {column} = NULL WHERE id = :id", id=row_id)
        db.session.rollback()
        assert column in str(caught.value.orig), column
