"""Configuration, the command line, the demo data set and the OpenAPI document."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import (
    Agency,
    AgencyKind,
    Camera,
    Centre,
    CentreStatus,
    District,
    InviteCode,
    MealWindow,
    ParentLink,
    Role,
    User,
)
from app.services.cameras import stream_url
from config import ConfigError, ProductionConfig, load_config
from tests import factories as f


def test_development_is_the_default_and_uses_sqlite_in_the_instance_folder(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)})
    assert config.ENV_NAME == "development"
    assert f"sqlite:///{tmp_path}/bright_kitchen.sqlite3" == config.SQLALCHEMY_DATABASE_URI


def test_database_url_switches_to_postgresql_with_psycopg():
    config = load_config({"DATABASE_URL": "postgres://bk:bk@db:5432/bk"})
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://bk:bk@db:5432/bk"


def test_typed_values_are_parsed_from_the_environment():
    config = load_config({"ACCESS_TOKEN_TTL_S": "60", "DEMO_MODE": "false"})
    assert config.ACCESS_TOKEN_TTL_S == 60
    assert config.DEMO_MODE is False


def test_a_malformed_number_is_a_clear_configuration_error():
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_TTL_S"):
        load_config({"ACCESS_TOKEN_TTL_S": "soon"})


def test_production_refuses_to_start_without_its_secrets():
    missing = "SECRET_KEY, CREDENTIALS_KEYS, HLS_SIGNING_KEY, DATABASE_URL"
    with pytest.raises(ConfigError, match=missing):
        load_config({"BK_ENV": "production"})


def test_production_refuses_a_short_secret_key():
    env = {
        "BK_ENV": "production",
        "SECRET_KEY": "short",
        "CREDENTIALS_KEYS": "k",
        "HLS_SIGNING_KEY": "h",
        "DATABASE_URL": "postgresql://x/y",
    }
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(env)


PRODUCTION = {
    "BK_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "CREDENTIALS_KEYS": "8rgvJ0i6cC2mKxJgWm0HKzqJ8Q6m0yA1zD0b3V0tW3c=",
    "HLS_SIGNING_KEY": "h" * 32,
    "DATABASE_URL": "postgresql://bk@db/bk",
}


def test_production_starts_with_its_secrets_and_no_demo():
    config = load_config(PRODUCTION)
    assert config.ENV_NAME == "production" and config.DEMO_MODE is False


def test_production_refuses_demo_mode():
    with pytest.raises(ConfigError, match="DEMO_MODE cannot be on in production"):
        load_config({**PRODUCTION, "DEMO_MODE": "true"})


@pytest.mark.parametrize(
    "keys",
    ["k", "not-a-fernet-key-at-all", " , ", "8rgvJ0i6cC2mKxJgWm0HKzqJ8Q6m0yA1zD0b3V0tW3c=,k"],
)
def test_production_refuses_a_malformed_credentials_key(keys):
    with pytest.raises(ConfigError, match="CREDENTIALS_KEYS: key"):
        load_config({**PRODUCTION, "CREDENTIALS_KEYS": keys})


def test_development_creates_its_secrets_once_and_keeps_them(tmp_path):
    first = create_app(load_config({"INSTANCE_PATH": str(tmp_path)}))
    second = create_app(load_config({"INSTANCE_PATH": str(tmp_path)}))
    assert first.config["SECRET_KEY"] and first.config["CREDENTIALS_KEYS"]
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_seed_demo_creates_the_meilan_pilot(runner):
    result = runner.invoke(args=["bk", "seed-demo", "--password", "demo-password-1"])
    assert result.exit_code == 0, result.output
    for username in ("admin", "inspector", "operator", "technician", "parent"):
        assert username in result.output
    statuses = set(db.session.scalars(select(Centre.status)))
    assert statuses == set(CentreStatus)
    live = db.session.scalars(select(Centre).where(Centre.status == CentreStatus.LIVE)).all()
    for centre in live:
        rooms = {camera.area.kind.value for camera in centre.cameras}
        assert rooms == {"prep", "storage", "cooking", "washing"}
    parent = db.session.scalar(select(User).where(User.username == "parent"))
    assert parent.role is Role.PARENT
    chiefs = db.session.scalars(select(User).where(User.is_supervisor.is_(True))).all()
    assert [(u.username, u.role, u.agency.notice_prefix) for u in chiefs] == [
        ("supervisor", Role.INSPECTOR, "美兰市监整")
    ]
    assert "supervisor" in result.output
    assert db.session.scalar(select(func.count()).select_from(ParentLink)) == 1
    assert db.session.scalar(select(InviteCode.code)) == "123456"
    assert db.session.scalar(select(func.count()).select_from(Camera)) > 0
    # The district's two agencies, market regulation and education, both over Meilan.
    meilan = db.session.scalar(select(District).where(District.code == "460108"))
    agencies = db.session.scalars(select(Agency).where(Agency.district_id == meilan.id)).all()
    assert {a.kind for a in agencies} == {AgencyKind.MARKET_REGULATION, AgencyKind.EDUCATION}
    for centre in live:
        # Every camera of a live centre streams from the simulated source, and the centre has
        # meal windows for parents to watch in.
        assert all(stream_url(camera).startswith("sim://") for camera in centre.cameras)
        windows = db.session.scalars(
            select(MealWindow).where(MealWindow.centre_id == centre.id)
        ).all()
        assert windows and all(w.starts_at < w.ends_at for w in windows)


def test_every_demo_account_logs_in_with_the_demo_password(runner, client):
    runner.invoke(args=["bk", "seed-demo", "--password", "demo-password-1"])
    for username in ("admin", "inspector", "operator", "technician", "parent"):
        response = client.post(
            "/api/v1/auth/login", json={"username": username, "password": "demo-password-1"}
        )
        assert response.status_code == 200, username
        assert response.get_json()["user"]["role"] == username


def test_an_admin_marks_an_inspector_as_supervisor_from_the_command_line(runner):
    chief = f.inspector_of(f.agency(f.district()), display_name="赵科长")
    operator = f.operator_of(f.centre(f.district()))
    db.session.commit()
    result = runner.invoke(args=["bk", "supervisor", chief.username])
    assert result.exit_code == 0, result.output
    assert "赵科长" in result.output and "已设为本单位负责人" in result.output
    db.session.expire_all()
    assert db.session.get(User, chief.id).is_supervisor is True
    off = runner.invoke(args=["bk", "supervisor", chief.username, "--off"])
    assert "已取消" in off.output
    db.session.expire_all()
    assert db.session.get(User, chief.id).is_supervisor is False
    refused = runner.invoke(args=["bk", "supervisor", operator.username])
    assert refused.exit_code != 0
    assert "只有监管人员可以设为负责人" in refused.output


def test_seed_demo_twice_is_refused_unless_asked_to_skip(runner):
    assert runner.invoke(args=["bk", "seed-demo", "--password", "demo-password-1"]).exit_code == 0
    again = runner.invoke(args=["bk", "seed-demo", "--password", "demo-password-1"])
    assert again.exit_code != 0
    assert "演示数据已存在" in again.output
    skip = runner.invoke(args=["bk", "seed-demo", "--if-empty"])
    assert skip.exit_code == 0


def test_seed_demo_is_refused_under_the_production_config(app_config, tmp_path):
    fields = {f.name: getattr(app_config, f.name) for f in dataclasses.fields(app_config)}
    fields.update(
        ENV_NAME="production",
        DEMO_MODE=False,
        DATABASE_URL=app_config.DATABASE_URL or app_config.SQLALCHEMY_DATABASE_URI,
    )
    production = ProductionConfig(**fields)
    production_app = create_app(production)
    result = production_app.test_cli_runner().invoke(args=["bk", "seed-demo"])
    assert result.exit_code != 0
    assert "生产环境不允许写入演示数据" in result.output


def test_create_admin_then_log_in(runner, client):
    result = runner.invoke(
        args=["bk", "create-admin", "--username", "root"],
        input="a-long-admin-password\na-long-admin-password\n",
    )
    assert result.exit_code == 0, result.output
    response = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "a-long-admin-password"}
    )
    assert response.get_json()["user"]["role"] == "admin"


def test_create_admin_refuses_a_short_password(runner):
    result = runner.invoke(
        args=["bk", "create-admin", "--username", "root"], input="short\nshort\n"
    )
    assert result.exit_code != 0
    assert "密码至少 10 位" in result.output


def test_openapi_documents_the_api_with_bearer_security(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    body_schema = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_schema == "#/components/schemas/LoginIn"
    assert set(spec["components"]["schemas"]["LoginIn"]["required"]) == {"username", "password"}
    assert "401" in login["responses"]
    centres = spec["paths"]["/api/v1/centres"]["get"]
    assert centres["security"] == [{"bearerAuth": []}]
    assert "/api/v1/auth/wxa" in spec["paths"]


def test_the_landing_page_is_in_chinese(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "明厨亮灶" in response.get_data(as_text=True)
