"""Command-line tasks: `flask --app wsgi bk …`; the schema is `flask --app wsgi db upgrade`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app.errors import DomainError

bk = AppGroup("bk", help="Bright Kitchen administration.")


@bk.command("create-admin")
@click.option("--username", required=True)
@click.password_option()
def create_admin(username: str, password: str) -> None:
    """Create an administrator account."""
    from app.services.accounts import create_admin as create

    try:
        user = create(username, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已创建管理员 {user.username}")


@bk.command("seed-demo")
@click.option(
    "--password",
    envvar="DEMO_PASSWORD",
    default=None,
    help="Password of every demo account (default: DEMO_PASSWORD).",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the demo data is already there.")
def seed_demo(password: str | None, if_empty: bool) -> None:
    """Load the Meilan district demo data set (refused in production)."""
    from flask import current_app

    from app.errors import Conflict
    from app.services.demo import seed_demo as seed

    password = password or current_app.config["DEMO_PASSWORD"]
    try:
        logins = seed(password)
    except Conflict:
        if if_empty:
            click.echo("演示数据已存在")
            return
        raise click.ClickException("演示数据已存在") from None
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo("演示账号（密码相同）：")
    for login in logins:
        click.echo(f"  {login.username:<14} {login.role.value:<10} {login.display_name}")


def init_app(app: Flask) -> None:
    app.cli.add_command(bk)
