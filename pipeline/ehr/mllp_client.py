"""HL7 v2 destination: MDM messages over MLLP (optionally TLS), one acknowledgement each.

The connection is python-hl7's asyncio MLLP stream, driven by a private event loop so
the sender thread can stay synchronous; it is kept open between messages and opened
again after any failure. AA is delivered; AE/AR are dead with the receiver's text; no
answer, a broken connection or an answer to another message is retried.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import hl7
import hl7.mllp

from pipeline.ehr.mdm import control_id, mdm_t02, mdm_t11, parse_ack
from pipeline.ehr.outbox import Delivery, Message
from pipeline.ehr.settings import EhrSettings, Hl7Destination

log = logging.getLogger(__name__)

STREAM_LIMIT = 256 * 1024 * 1024  # one message holds a whole base64 PDF


def tls_context(dest: Hl7Destination, config_dir: Path) -> ssl.SSLContext | None:
    tls = dest.tls
    if not tls.enabled:
        return None

    def resolve(path: Path | None) -> str | None:
        return None if path is None else str(path if path.is_absolute() else config_dir / path)

    context = ssl.create_default_context(cafile=resolve(tls.ca_file))
    if tls.cert_file:
        context.load_cert_chain(str(resolve(tls.cert_file)), resolve(tls.key_file))
    return context


class MllpClient:
    """Sends outbox messages to one HL7 v2 destination."""

    def __init__(self, dest: Hl7Destination, codes: EhrSettings, config_dir: Path) -> None:
        self.dest = dest
        self._codes = codes
        self._ssl = tls_context(dest, config_dir)
        self._loop = asyncio.new_event_loop()
        self._stream: tuple[hl7.mllp.HL7StreamReader, hl7.mllp.HL7StreamWriter] | None = None

    def close(self) -> None:
        self._loop.run_until_complete(self._disconnect())
        self._loop.close()

    def forget_patients(self) -> None:
        """Nothing cached: the receiver matches PID-3 itself."""

    def deliver(self, message: Message, pdf: Callable[[], bytes]) -> Delivery:
        if message.action == "cancel":
            text = mdm_t11(self.dest, self._codes, message)
        else:
            text = mdm_t02(self.dest, self._codes, message, pdf())
        try:
            answer = self._loop.run_until_complete(asyncio.wait_for(self._exchange(text), self.dest.timeout_seconds))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, EOFError, hl7.ParseException) as exc:
            self._loop.run_until_complete(self._disconnect())
            what = "no acknowledgement" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            return Delivery.retry(f"{self.dest.name} ({self.dest.host}:{self.dest.port}): {what}")
        return self._judge(message, answer)

    def _judge(self, message: Message, answer: str) -> Delivery:
        try:
            ack = parse_ack(answer)
        except ValueError as exc:
            self._loop.run_until_complete(self._disconnect())
            return Delivery.retry(f"{self.dest.name}: {exc}")
        if ack.control_id != control_id(message):
            # An answer to something else: the stream is out of step, so start a new one.
            self._loop.run_until_complete(self._disconnect())
            return Delivery.retry(f"{self.dest.name} acknowledged {ack.control_id!r}, not {control_id(message)!r}")
        if ack.accepted:
            return Delivery.sent(f"{ack.code} {ack.text}".strip(), ack.control_id)
        return Delivery.dead(f"{ack.code}: {ack.text or 'no reason given'}")

    async def _exchange(self, text: str) -> str:
        if self._stream is None:
            self._stream = await hl7.mllp.open_hl7_connection(
                self.dest.host, self.dest.port, ssl=self._ssl, limit=STREAM_LIMIT, encoding="utf-8"
            )
        reader, writer = self._stream
        writer.writeblock(text.encode("utf-8"))  # built by mdm.py already; parsing it again costs more than the send
        await writer.drain()
        answer = await reader.readmessage()
        return str(answer)

    async def _disconnect(self) -> None:
        if self._stream is None:
            return
        _, writer = self._stream
        self._stream = None
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, asyncio.IncompleteReadError):
            pass
