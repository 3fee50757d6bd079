"""`medarchive hl7 listen`: the MLLP server that takes ADT messages from the registration system.

One asyncio loop accepts connections; each message is handled in one worker thread, in
arrival order, and answered AA or AE with the reason. A04/A08/A28/A31 create or update
the patient (a changed name or birth date is kept in the patient's history); an A40 is
checked against the patient index (``merge_check``) and either recorded (alias and merge
journal, one transaction) or held for a clerk; an A37 undoes an applied merge. A merge
thread re-files the documents (pipeline/ehr/merge.py), resuming at the next start if
interrupted. Every message is in the audit log; log lines carry MRNs and control ids,
never names.

Who may send and how much (``listener_guard``): TLS with client certificates, an
allow-list of source addresses, caps on connections overall and per address, an idle
timeout, a deadline for each message once its first byte arrived, and the size limit
enforced while reading. Only the segments the archive reads are parsed, and those are
capped (adt.MAX_READ_CHARS), so no message costs more than milliseconds of the single
worker. Refusals and resource errors are logged once per cause, then counted.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.clinic.appointments import AppointmentBook
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.ehr import adt, siu
from pipeline.ehr.listener_guard import CauseLog, Gate, ListenerError, check_transport, server_tls_context
from pipeline.ehr.merge import resume_merges
from pipeline.ehr.merge_check import merge_hold_reason, unmerge_hold_reason
from pipeline.identify.patients import PatientIndex

__all__ = ["Listener", "ListenerError", "start_listener"]

log = logging.getLogger("medarchive.hl7")
_POLL_SECONDS = 0.2
_MERGE_POLL_SECONDS = 10.0  # a clerk's confirmation in another process is picked up this fast
_MERGE_RETRY_SECONDS = 60.0
_START_TIMEOUT_SECONDS = 15.0
_START_BLOCK, _END_BLOCK = b"\x0b", b"\x1c\r"
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Refused(Exception):
    """A message that cannot be read whole (too large): answered AE, then the connection is closed."""


class Listener:
    """One MLLP listener over the data root of ``config``."""

    def __init__(self, config: Config, *, after_move: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.settings = config.hl7_listener
        check_transport(self.settings)
        self.tls = server_tls_context(config)
        self.patients = PatientIndex.for_config(config)
        if not self.patients.count() and not self.patients.open_merges():
            # With an empty index every document would go to review as "not in the patient index".
            self.patients.close()
            raise ListenerError(
                "the patient index is empty; import the registration system's export first "
                "(`medarchive patients import roster.csv`), then start the listener"
            )
        self.audit = AuditLog.for_config(config)
        self.after_move = after_move  # tests: called after each document a merge moves
        self.port: int | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._merges_due = threading.Event()
        self._closed = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7-messages")
        self.gate = Gate(self.settings)
        self.causes = CauseLog(log)

    # -- one message ---------------------------------------------------------

    def handle(self, raw: bytes) -> bytes:
        """The acknowledgement of one framed message, after acting on it."""
        text = adt.normalise(raw)
        header = adt.read_header(text)
        try:
            if header.message_type == "SIU":
                reason, mrns = self._schedule(text, header)
                code, error = "AA", None
            else:
                message = adt.read_adt(adt.parse(text), header, self.settings, self.config.extraction.is_mrn)
                code, reason, error = "AA", self._apply(message), None
                mrns = [m for m in (message.prior_mrn, message.mrn) if m]
        except adt.AdtError as exc:
            code, reason, error, mrns = "AE", str(exc), exc.code, []
        except MedarchiveError as exc:
            code, reason, error, mrns = "AE", str(exc), adt.APPLICATION_ERROR, []
        except Exception as exc:
            # The type only: an unexpected exception's text may quote the message.
            log.error("HL7 %s: %s while acting on it", header.control_id or "-", type(exc).__name__)
            code, reason, error, mrns = (
                "AE",
                f"internal error ({type(exc).__name__}); resend it later",
                adt.APPLICATION_ERROR,
                [],
            )
        return self._answer(header, code, reason, error, mrns)

    def refuse(self, reason: str) -> bytes:
        """The AE for bytes that are not a message at all (bad framing, too large)."""
        return self._answer(adt.Header(), "AE", reason, "100", [])

    def _apply(self, message: adt.AdtMessage) -> str:
        event = message.header.event
        if message.unlinked_mrn is not None:
            return self._accept_unmerge(message)
        if message.prior_mrn is not None:
            return self._accept_merge(message)
        if message.patient is None:
            return f"event {event or '(none)'} is not used by the archive; nothing changed"
        change = self.patients.upsert(
            message.patient, changed_by=message.header.sender, source=message.header.control_id or None
        )
        if change == "updated":
            note = "the earlier name and birth date are kept in its history"
            return f"patient {message.patient.mrn} updated; {note}"
        return f"patient {message.patient.mrn} {change}"

    def _schedule(self, text: str, header: adt.Header) -> tuple[str, list[str]]:
        """Book, move or cancel one appointment (SIU); the reason for the ACK and the MRN it concerns."""
        message = siu.read_siu(adt.parse(text, siu.READ_SEGMENTS), header, self.settings, self.config.extraction.is_mrn)
        appointment = message.appointment
        with AppointmentBook.for_config(self.config) as book:
            known = book.get(appointment.appointment_id)
            if appointment.status == "cancelled" and (known is not None or not message.has_start):
                cancelled = book.cancel(appointment.appointment_id)
                change = "cancelled" if cancelled else "unchanged (not booked)"
            else:
                change = book.save(appointment)
        return f"appointment {appointment.appointment_id} {change}", [appointment.mrn]

    def _hold(
        self, kind: Literal["merge", "unmerge"], prior: str, survivor: str, message: adt.AdtMessage, reason: str
    ) -> str:
        """Queue it for a clerk. Answered AA: the message was received and kept; AE would make the
        interface engine resend it for ever, and a resend changes nothing."""
        review, new = self.patients.hold(
            kind,
            prior,
            survivor,
            patient=message.patient,
            control_id=message.header.control_id or None,
            requested_by=message.header.sender,
            held_because=reason,
        )
        if new:
            self.audit.record(
                f"patient.{kind}",
                user=review.requested_by,
                mrns=[prior, survivor],
                outcome="held",
                reason=reason,
                details={"review": review.id, "control_id": review.control_id},
            )
        return f"held for review as #{review.id}, nothing changed: {reason}"

    def _accept_merge(self, message: adt.AdtMessage) -> str:
        prior, survivor = message.prior_mrn, message.mrn
        assert prior is not None and survivor is not None
        if self.patients.survivor_of(prior) is None:
            reason = merge_hold_reason(
                self.settings.merge_policy,
                prior,
                survivor,
                self.patients.get(prior),
                self.patients.get(survivor),
                message.patient,
            )
            if reason is not None:
                return self._hold("merge", prior, survivor, message, reason)
        merge, new = self.patients.record_merge(
            prior,
            survivor,
            survivor_patient=message.patient,
            control_id=message.header.control_id or None,
            requested_by=message.header.sender,
        )
        if not new:
            return f"MRN {merge.prior} was already merged into MRN {merge.survivor}; nothing changed"
        self.audit.record(
            "patient.merge",
            user=merge.requested_by,
            mrns=[merge.prior, merge.survivor],
            outcome="accepted",
            details={"merge": merge.id, "control_id": merge.control_id},
        )
        self._merges_due.set()
        return f"merge of MRN {merge.prior} into MRN {merge.survivor} accepted; its documents are re-filed under {merge.survivor}"

    def _accept_unmerge(self, message: adt.AdtMessage) -> str:
        one, other = message.mrn, message.unlinked_mrn
        assert one is not None and other is not None
        merge = self.patients.applied_merge(one, other)
        if merge is None:
            undone = [
                m for m in self.patients.merges() if m.kind == "unmerge" and {m.prior, m.survivor} == {one, other}
            ]
            if undone:
                return f"the merge of MRN {undone[-1].prior} into MRN {undone[-1].survivor} was already undone; nothing changed"
            raise adt.AdtError(f"MRN {one} and MRN {other} are not merged; nothing to undo", adt.UNKNOWN_KEY)
        reason = unmerge_hold_reason(self.settings.merge_policy)
        if reason is not None:
            return self._hold("unmerge", merge.prior, merge.survivor, message, reason)
        unmerge = self.patients.record_unmerge(
            merge, requested_by=message.header.sender, control_id=message.header.control_id or None, reason=None
        )
        self.audit.record(
            "patient.unmerge",
            user=unmerge.requested_by,
            mrns=[unmerge.prior, unmerge.survivor],
            outcome="accepted",
            details={"merge": unmerge.id, "undoes": merge.id, "control_id": unmerge.control_id},
        )
        self._merges_due.set()
        return (
            f"merge of MRN {merge.prior} into MRN {merge.survivor} undone; "
            f"its documents are filed under {merge.prior} again"
        )

    def _answer(self, header: adt.Header, code: str, reason: str, error: str | None, mrns: list[str]) -> bytes:
        kind = f"{header.message_type or '?'}^{header.event or '?'}"
        try:
            self.audit.record(
                "hl7.receive",
                user=header.sender,
                mrns=mrns,
                outcome=code,
                reason=reason if code != "AA" else None,
                details={"control_id": header.control_id, "type": kind, "result": reason},
            )
        except MedarchiveError as exc:
            log.error("HL7 %s %s: audit log not written (%s); answered AE", kind, header.control_id or "-", exc)
            code, reason, error = (
                "AE",
                "the archive cannot write its audit log; resend the message later",
                adt.APPLICATION_ERROR,
            )
        log.log(
            logging.INFO if code == "AA" else logging.WARNING,
            "HL7 %s %s from %s: %s%s",
            kind,
            header.control_id or "-",
            header.sending_facility or "?",
            code,
            f" ({reason})" if code != "AA" else "",
        )
        ack = adt.build_ack(
            header,
            code,
            text=reason,
            error_code=error,
            control_id=uuid.uuid4().hex[:20],
            application=self.settings.receiving_application,
        )
        return ack.encode("utf-8")

    # -- serving -------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set; carry out recorded merges meanwhile."""
        merges = threading.Thread(target=self._merge_worker, args=(stop,), name="hl7-merges", daemon=True)
        merges.start()
        try:
            asyncio.run(self._serve(stop))
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self._closed.set()
            self._merges_due.set()
            merges.join()
            self.patients.close()

    async def _serve(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        try:
            server = await asyncio.start_server(
                self._client, self.settings.host, self.settings.port, limit=self.settings.max_message_kb * 1024 + 16
            )
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenerError(f"cannot listen for HL7 on {self.settings.host}:{self.settings.port}: {why}") from None
        self.port = server.sockets[0].getsockname()[1]
        log.info("listening for HL7 ADT on %s:%d (%s)", self.settings.host, self.port, self.settings.transport())
        self.ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(_POLL_SECONDS)
                self.causes.flush()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()
            self._executor.shutdown(wait=True)
            self.causes.flush(force=True)
            log.info("HL7 listener stopped")

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (EMFILE at accept, a reset during a handshake): one line per cause, no traceback."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            self.causes.note(
                f"cannot accept connections: {os.strerror(exc.errno)}; retried every second", logging.ERROR
            )
            return
        what = type(exc).__name__ if exc is not None else "no exception"
        self.causes.note(f"{context.get('message', 'event loop error')} ({what})")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else "?"
        refused = self.gate.admit(address)
        if refused is not None:
            self.causes.note(refused)
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            if self.tls is not None and not await self._handshake(writer):
                return
            while (block := await self._read_block(reader)) is not None:
                ack = await asyncio.get_running_loop().run_in_executor(self._executor, self._answer_block, block)
                writer.write(_START_BLOCK + ack + _END_BLOCK)
                await writer.drain()
        except _Refused as refused_message:
            ack = await asyncio.get_running_loop().run_in_executor(self._executor, self.refuse, str(refused_message))
            writer.write(_START_BLOCK + ack + _END_BLOCK)
            try:
                await asyncio.wait_for(writer.drain(), self.settings.read_timeout_seconds)
            except (OSError, TimeoutError):
                pass
        except (OSError, TimeoutError) as exc:
            self.causes.note(f"connection lost ({type(exc).__name__})", logging.INFO)
        finally:
            self._writers.discard(writer)
            self.gate.release(address)
            writer.transport.abort()

    async def _handshake(self, writer: asyncio.StreamWriter) -> bool:
        assert self.tls is not None
        try:
            await writer.start_tls(self.tls, ssl_handshake_timeout=self.settings.tls_handshake_timeout_seconds)
        except ssl.SSLError as exc:
            self.causes.note(f"TLS handshake refused ({exc.reason or type(exc).__name__})")
            return False
        except (OSError, TimeoutError) as exc:
            self.causes.note(f"TLS handshake not completed ({type(exc).__name__})")
            return False
        return True

    async def _read_block(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next framed message (start byte included), or None when the connection is over."""
        try:
            first = await asyncio.wait_for(reader.readexactly(1), self.settings.idle_timeout_seconds)
        except asyncio.IncompleteReadError:
            return None  # the sender closed the connection
        except TimeoutError:
            self.causes.note(
                f"idle connection closed after hl7_listener.idle_timeout_seconds ({self.settings.idle_timeout_seconds:g} s)",
                logging.INFO,
            )
            return None
        try:
            rest = await asyncio.wait_for(reader.readuntil(_END_BLOCK), self.settings.read_timeout_seconds)
        except asyncio.LimitOverrunError:
            self.causes.note("message over hl7_listener.max_message_kb refused")
            raise _Refused(
                f"the message is larger than {self.settings.max_message_kb} KB (hl7_listener.max_message_kb)"
            ) from None
        except asyncio.IncompleteReadError:
            self.causes.note("connection closed in the middle of a message", logging.INFO)
            return None
        except TimeoutError:
            self.causes.note(
                f"message not complete within hl7_listener.read_timeout_seconds ({self.settings.read_timeout_seconds:g} s); connection closed"
            )
            return None
        return first + rest[: -len(_END_BLOCK)]

    def _answer_block(self, block: bytes) -> bytes:
        if not block.startswith(_START_BLOCK):
            return self.refuse("the message is not framed by MLLP (<VT> ... <FS><CR>)")
        return self.handle(block[1:])

    def _merge_worker(self, stop: threading.Event) -> None:
        index = open_index(self.config)

        def stopping() -> bool:
            return stop.is_set() or self._closed.is_set()

        try:
            while not stopping():
                self._merges_due.clear()
                wait = _MERGE_POLL_SECONDS
                try:
                    resume_merges(
                        self.config, self.patients, index, self.audit, should_stop=stopping, after_move=self.after_move
                    )
                except Exception as exc:
                    wait = _MERGE_RETRY_SECONDS
                    log.error("merge stopped (%s: %s); retried in %g s", type(exc).__name__, exc, wait)
                self._merges_due.wait(wait)
        finally:
            index.close()


def start_listener(config: Config, stop: threading.Event) -> threading.Thread:
    """Start the listener in a thread (for `medarchive watch`); return once it listens.

    Raises ListenerError when it cannot (empty patient index, port taken). Set ``stop``
    to end it; join the thread to wait until open merges are paused at a document boundary.
    """
    listener = Listener(config)
    thread = threading.Thread(target=_serve_logged, args=(listener, stop), name="hl7-listener", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not listener.ready.wait(_POLL_SECONDS):
        if not thread.is_alive() or time.monotonic() > deadline:
            failure = listener.failure
            raise (
                failure
                if isinstance(failure, MedarchiveError)
                else ListenerError(f"the HL7 listener did not start ({failure!r})")
            )
    return thread


def _serve_logged(listener: Listener, stop: threading.Event) -> None:
    try:
        listener.serve(stop)
    except MedarchiveError as exc:
        log.error("HL7 listener: %s", exc)
