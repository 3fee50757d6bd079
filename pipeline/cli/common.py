"""What every command module shares: config loading, the index, the acting user, options."""

from __future__ import annotations

import functools
from datetime import date

import click

from pipeline.archive.audit import acting_user
from pipeline.archive.dataroot import open_data_root
from pipeline.core.config import Config, load_config

# Exit status of ingest and backlog when any input was set aside as failed.
EXIT_FAILED_INPUTS = 2


def _load(ctx: click.Context, config_path: str | None) -> Config:
    path = config_path or ctx.find_root().params.get("config") or "config.yaml"
    config = load_config(path)
    open_data_root(config)
    return config


def with_config(command):
    """Give every command its own --config, falling back to the group's."""

    @click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), help="config file (default ./config.yaml)"
    )
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx, config_path, **kwargs):
        return command(_load(ctx, config_path), **kwargs)

    return wrapper


def actor() -> str:
    """The person acting: the root group's --user, else the OS user."""
    return acting_user(click.get_current_context().find_root().params.get("user"))


def _iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


def date_option(flag: str, dest: str, help_text: str):
    return click.option(flag, dest, callback=_iso_date, help=help_text + " (YYYY-MM-DD)")


def json_option(help_text: str = "one JSON object per line"):
    return click.option("--json", "as_json", is_flag=True, help=help_text)
