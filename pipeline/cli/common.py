"""What every command module shares: config loading, the index, the acting user, options."""

from __future__ import annotations

import functools
import os
from datetime import date
from typing import TYPE_CHECKING

import click

from pipeline.core.models import UNCLASSIFIED

if TYPE_CHECKING:  # (imported when a command runs: --help needs no config)
    from pipeline.core.config import Config

# Exit status of ingest and backlog when any input was set aside as failed.
EXIT_FAILED_INPUTS = 2
# Names the config file for commands run outside the project folder; --config wins.
CONFIG_ENV = "MEDARCHIVE_CONFIG"


def _load(ctx: click.Context, config_path: str | None) -> Config:
    from pipeline.archive.dataroot import open_data_root
    from pipeline.core.config import load_config

    # (The root group's --config is also filled from CONFIG_ENV.)
    path = config_path or ctx.find_root().params.get("config") or os.environ.get(CONFIG_ENV) or "config.yaml"
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
    from pipeline.archive.audit import acting_user

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


def doc_type_option(help_text: str = "only documents of this type (`medarchive types` lists them)"):
    return click.option("--type", "doc_type", help=help_text)


def check_doc_type(config: Config, doc_type: str | None) -> None:
    """Refuse a type the config does not define: a typo would otherwise match nothing, silently."""
    known = [*config.classification.types, UNCLASSIFIED]
    if doc_type is not None and doc_type not in known:
        raise click.BadParameter(
            f"unknown document type {doc_type!r}; the types are: {', '.join(known)}", param_hint="'--type'"
        )


def json_option(help_text: str = "one JSON object per line"):
    return click.option("--json", "as_json", is_flag=True, help=help_text)
