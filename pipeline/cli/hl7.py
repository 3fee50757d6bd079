"""`medarchive hl7 listen`: take ADT messages from the registration system (HL7 v2 over MLLP)."""

from __future__ import annotations

import logging
import signal
import threading

import click

from pipeline.cli.common import with_config
from pipeline.core.config import Config
from pipeline.ehr.listener import Listener


@click.group(name="hl7")
def hl7_group():
    """The registration system's ADT feed: patient updates and merges."""


@hl7_group.command()
@click.option("--host", help="address to listen on (default hl7_listener.host)")
@click.option("--port", type=click.IntRange(0, 65535), help="MLLP port (default hl7_listener.port)")
@with_config
def listen(config: Config, host: str | None, port: int | None):
    """Answer ADT messages until SIGTERM or Ctrl-C (`watch` runs this too when hl7_listener.enabled)."""
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    config = config.model_copy(update={"hl7_listener": config.hl7_listener.model_copy(update=overrides)})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Listener(config).serve(stop)


COMMANDS: list[click.Command] = [hl7_group]
