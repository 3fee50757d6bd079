"""`medarchive hl7 listen`: the MLLP server that takes ADT messages from the registration system.

One asyncio loop (python-hl7's MLLP streams) accepts connections; each message is
handled in one worker thread, in arrival order, and answered AA or AE with the
reason. A04/A08/A28/A31 create or update the patient; an A40 is recorded (alias and
merge journal, one transaction) and answered, then a merge thread re-files the
documents (pipeline/ehr/merge.py), resuming at the next start if interrupted.
Every message is in the audit log; log lines carry MRNs and control ids, never names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import hl7.mllp

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.clinic.appointments import AppointmentBook
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.ehr import adt, siu
from pipeline.ehr.merge import resume_merges
from pipeline.identify.patients import PatientIndex

log = logging.getLogger("medarchive.hl7")
_POLL_SECONDS = 0.2
_MERGE_RETRY_SECONDS = 60.0
_START_TIMEOUT_SECONDS = 15.0


class ListenerError(MedarchiveError):
    """The listener cannot start (the message says what to fix)."""


class Listener:
    """One MLLP listener over the data root of ``config``."""

    def __init__(self, config: Config, *, after_move: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.settings = config.hl7_listener
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
        self._writers: set = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7-messages")

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
        if message.prior_mrn is not None:
            return self._accept_merge(message)
        if message.patient is None:
            return f"event {event or '(none)'} is not used by the archive; nothing changed"
        change = self.patients.upsert(message.patient)
        return f"patient {message.patient.mrn} {change}"

    def _schedule(self, text: str, header: adt.Header) -> tuple[str, list[str]]:
        """Book, move or cancel one appointment (SIU); the reason for the ACK and the MRN it concerns."""
        message = siu.read_siu(adt.parse(text), header, self.settings, self.config.extraction.is_mrn)
        appointment = message.appointment
        with AppointmentBook.for_config(self.config) as book:
            known = book.get(appointment.appointment_id)
            if appointment.status == "cancelled" and (known is not None or not message.has_start):
                cancelled = book.cancel(appointment.appointment_id)
                change = "cancelled" if cancelled else "unchanged (not booked)"
            else:
                change = book.save(appointment)
        return f"appointment {appointment.appointment_id} {change}", [appointment.mrn]

    def _accept_merge(self, message: adt.AdtMessage) -> str:
        merge, new = self.patients.record_merge(
            message.prior_mrn,
            message.mrn,
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
        try:
            server = await hl7.mllp.start_hl7_server(
                self._client, self.settings.host, self.settings.port, limit=self.settings.max_message_kb * 1024
            )
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenerError(f"cannot listen for HL7 on {self.settings.host}:{self.settings.port}: {why}") from None
        self.port = server.sockets[0].getsockname()[1]
        log.info("listening for HL7 ADT on %s:%d", self.settings.host, self.port)
        self.ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(_POLL_SECONDS)
        finally:
            server.close()
            for writer in list(self._writers):
                writer.close()
            await server.wait_closed()
            self._executor.shutdown(wait=True)
            log.info("HL7 listener stopped")

    async def _client(self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self._writers.add(writer)
        try:
            while True:
                try:
                    block = await reader.readblock()
                    ack = await loop.run_in_executor(self._executor, self.handle, block)
                except asyncio.IncompleteReadError:
                    return  # the sender closed the connection
                except hl7.mllp.InvalidBlockError:
                    ack = await loop.run_in_executor(
                        self._executor, self.refuse, "the message is not framed by MLLP (<VT> ... <FS><CR>)"
                    )
                except ValueError:
                    ack = await loop.run_in_executor(
                        self._executor,
                        self.refuse,
                        f"the message is larger than {self.settings.max_message_kb} KB (hl7_listener.max_message_kb)",
                    )
                writer.writeblock(ack)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _merge_worker(self, stop: threading.Event) -> None:
        index = open_index(self.config)

        def stopping() -> bool:
            return stop.is_set() or self._closed.is_set()

        try:
            while not stopping():
                self._merges_due.clear()
                wait = _MERGE_RETRY_SECONDS
                try:
                    resume_merges(
                        self.config, self.patients, index, self.audit, should_stop=stopping, after_move=self.after_move
                    )
                except Exception as exc:
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
