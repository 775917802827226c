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


@bk.command("supervisor")
@click.argument("username")
@click.option("--off", is_flag=True, help="No longer a supervisor.")
def supervisor(username: str, off: bool) -> None:
    """Mark an inspector as a supervisor of their agency (told when a notice is escalated)."""
    from app.services.accounts import set_supervisor

    try:
        user = set_supervisor(username, on=not off)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    state = "已设为" if user.is_supervisor else "已取消"
    click.echo(f"{user.display_name}（{user.username}）{state}本单位负责人")


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


@bk.command("worker")
@click.option("--workers", default=4, show_default=True)
def worker(workers: int) -> None:
    """Run the background worker: legal clocks, outbox delivery, chat photo downloads."""
    from flask import current_app

    huey = current_app.extensions["huey"]
    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()


@bk.command("outbox")
def outbox() -> None:
    """Deliver the due chat notifications now (what the worker does every few seconds)."""
    from bots.dispatcher import drain

    report = drain()
    click.echo(
        f"已发送 {len(report.sent)} 条，重试 {len(report.retrying) + len(report.throttled)} 条，"
        f"失败 {len(report.failed)} 条，稍后发送 {len(report.deferred)} 条"
    )


@bk.command("media")
@click.option("--node", default=None, help="This media node's name (its shard of cameras).")
def media(node: str | None) -> None:
    """Run the media supervisor for this node's cameras until stopped."""
    from flask import current_app

    from app.media_runner import run_forever

    run_forever(current_app._get_current_object(), node)  # type: ignore[attr-defined]


@bk.command("clocks")
def clocks() -> None:
    """Run the legal clocks once now (overdue and escalation)."""
    from flask import current_app

    result = current_app.extensions["bk_tasks"]["legal_clocks"].call_local()
    click.echo(f"逾期 {len(result['overdue'])} 件，上报 {len(result['escalated'])} 件")


def init_app(app: Flask) -> None:
    app.cli.add_command(bk)
