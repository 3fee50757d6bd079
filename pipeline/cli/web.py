"""`medarchive serve` and `medarchive user ...`."""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys

import click
from werkzeug.serving import make_server

from pipeline.archive import scratch
from pipeline.archive.audit import AuditLog
from pipeline.cli.common import actor, with_config
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from web.app import create_app, warm_up
from web.server import request_handler
from web.users import ROLES, UserStore


class WebError(MedarchiveError):
    """The web server cannot start as asked."""


@click.command()
@click.option("--host", help="address to listen on (default web.host, 127.0.0.1)")
@click.option("--port", type=click.IntRange(1, 65535), help="port (default web.port, 8080)")
@with_config
def serve(config: Config, host: str | None, port: int | None):
    """The clerks' web interface (put a TLS reverse proxy in front of it)."""
    host, port = host or config.web.host, port or config.web.port
    if not UserStore.for_config(config).all():
        click.echo("no web users yet: add one with `medarchive user add NAME --role admin`", err=True)
    try:
        # Bound here rather than by werkzeug, which prints its own advice and exits.
        listener = socket.create_server((host, port))
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # What a killed server (or any dead process) left of releases it was assembling.
    scratch.sweep(config.scratch_dir)
    app = create_app(config)
    try:
        warm_up(app)
    except MedarchiveError as exc:  # the pages that need no index still work
        click.echo(f"warning: {exc}", err=True)
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        request_handler=request_handler(config.web.request_timeout_seconds),
        fd=listener.fileno(),
    )
    # A background job of a script starts with SIGINT ignored; Ctrl-C or `kill -INT` still stops it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for line in _banner(config, host, port):
            click.echo(line, err=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _banner(config: Config, host: str, port: int) -> list[str]:
    """What the server listens on, and how a login can work there."""
    lines = [f"serving on http://{host}:{port}/ (Ctrl-C stops)"]
    if not config.web.secure_cookies:
        return [*lines, "session cookies go over plain http too (web.secure_cookies: false): for a trusted test only"]
    lines.append(
        "logins need HTTPS: the session cookie is sent over HTTPS only, so open this through the TLS "
        "reverse proxy (for a trusted test on this machine alone: web.secure_cookies: false)"
    )
    if not _loopback(host):
        lines.append(
            f"warning: listening on {host} over plain http with secure cookies on: a browser reaching "
            "this address directly cannot log in; put the TLS reverse proxy in front of it"
        )
    return lines


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError(
            "no terminal to ask for the password on: give it on standard input with --password-stdin"
        )
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@click.group()
def user():
    """Web accounts: add, change password or role, disable, enable, list."""


@user.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@with_config
def user_add(config: Config, name: str, role: str, password_stdin: bool):
    """Add a web user with a role (clerk, release or admin)."""
    UserStore.for_config(config).add(name, role, _password(password_stdin))
    AuditLog.for_config(config).record("user.add", user=actor(), details={"name": name, "role": role})
    click.echo(f"added {name} ({role})")


@user.command(name="passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@with_config
def user_passwd(config: Config, name: str, password_stdin: bool):
    """Set a web user's password."""
    UserStore.for_config(config).set_password(name, _password(password_stdin))
    AuditLog.for_config(config).record("user.passwd", user=actor(), details={"name": name})
    click.echo(f"password of {name} changed")


@user.command(name="role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@with_config
def user_role(config: Config, name: str, role: str):
    """Give a web user another role (takes effect on their next request)."""
    UserStore.for_config(config).set_role(name, role)
    AuditLog.for_config(config).record("user.role", user=actor(), details={"name": name, "role": role})
    click.echo(f"{name} is now {role}")


def _switch(action: str, enabled: bool):
    @click.argument("name")
    @with_config
    def command(config: Config, name: str):
        UserStore.for_config(config).set_enabled(name, enabled)
        AuditLog.for_config(config).record(f"user.{action}", user=actor(), details={"name": name})
        click.echo(f"{name} {action}d")

    command.__doc__ = f"{action.capitalize()} a web user (takes effect on their next request)."
    return user.command(name=action)(command)


_switch("disable", False)
_switch("enable", True)


@user.command(name="unlock")
@click.argument("name")
@with_config
def user_unlock(config: Config, name: str):
    """End a web user's login lockouts (at the running server's next login try)."""
    UserStore.for_config(config).unlock(name)
    AuditLog.for_config(config).record("user.unlock", user=actor(), details={"name": name})
    click.echo(f"{name} unlocked")


@user.command(name="list")
@with_config
def user_list(config: Config):
    """The web users, their roles and whether they are enabled."""
    accounts = UserStore.for_config(config).all()
    for account in accounts:
        click.echo(f"{account.name:<20} {account.role:<8} {'enabled' if account.enabled else 'disabled'}")
    click.echo(f"{len(accounts)} user(s)", err=True)


COMMANDS: list = [serve, user]
