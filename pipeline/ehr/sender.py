"""Deliver the outbox: `medarchive ehr send` (once) and the sender threads inside `watch`.

One sender per destination at a time (an flock beside the outbox), so a cron'd
`ehr send` and the daemon never deliver the same message twice at once. Each attempt
is counted before it is made; the audit log has what was about to be sent and every
answer, a batch of messages per entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.archive.audit import AuditLog, os_user
from pipeline.archive.store import find_sidecar
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import FILE_MODE
from pipeline.ehr.fhir import FhirClient
from pipeline.ehr.mllp_client import MllpClient
from pipeline.ehr.outbox import Delivery, Message, Outbox, backoff_seconds, outbox_path
from pipeline.ehr.settings import FhirDestination, Hl7Destination

log = logging.getLogger(__name__)

BATCH = 50
SHARED_BATCH = 10
_REQUESTS_PER_MESSAGE = 3


class PdfUnavailable(MedarchiveError):
    """The archived PDF a message carries cannot be read as it was queued."""


@dataclass
class DrainResult:
    """What one pass over a destination did."""

    destination: str
    sent: int = 0
    retry: int = 0
    dead: int = 0
    busy: bool = False
    waiting: int = 0


def archived_pdf(config: Config, message: Message) -> bytes:
    """The PDF a message is about: where it was when queued, else where its sidecar says it is now."""
    path = config.root / message.payload["path"]
    if not path.is_file():
        try:
            path = config.root / find_sidecar(config, message.doc_id).path
        except MedarchiveError:
            raise PdfUnavailable(f"document {message.doc_id} is no longer in the archive") from None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != message.payload["sha256"]:
        raise PdfUnavailable(
            f"the archived PDF of {message.doc_id} is not the one queued (SHA-256 differs); run `medarchive verify`"
        )
    return data


def make_client(config: Config, dest: FhirDestination | Hl7Destination) -> FhirClient | MllpClient:
    if dest.kind == "fhir":
        return FhirClient(dest, config.ehr, config.path.parent)
    return MllpClient(dest, config.ehr, config.path.parent)


@contextlib.contextmanager
def destination_lock(config: Config, name: str) -> Iterator[bool]:
    """Yields True while this process is the only sender to ``name``; False when another is.

    On the shared database senders claim messages instead, so all of them may send at once."""
    if config.database.url is not None:
        yield True
        return
    path = outbox_path(config).with_name(f"outbox.{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class DestinationSender:
    """Sends one destination's ready messages, in order, through one client."""

    def __init__(self, config: Config, dest: FhirDestination | Hl7Destination, outbox: Outbox, *, user: str) -> None:
        self.config = config
        self.dest = dest
        self.outbox = outbox
        self.user = user
        self.audit = AuditLog.for_config(config)
        self.client = make_client(config, dest)
        # Several senders on the shared database: a claimed message is theirs for as long as its
        # batch may take (a few requests per message, each within the timeout), so smaller batches.
        shared = config.database.url is not None
        self._batch = SHARED_BATCH if shared else BATCH
        self._lease = SHARED_BATCH * dest.timeout_seconds * _REQUESTS_PER_MESSAGE if shared else 0.0

    def close(self) -> None:
        self.client.close()

    def drain(self, stop: threading.Event | None = None) -> DrainResult:
        """Send everything ready now; messages waiting out a backoff are left for later."""
        result = DrainResult(self.dest.name)
        self.client.forget_patients()
        started = time.time()  # one try per message and pass: what fails now waits for a later pass
        while not (stop and stop.is_set()):
            batch = self.outbox.claim(
                self.dest.name, self._batch, self._wait_if_lost, now=started, lease_seconds=self._lease
            )
            if not batch:
                break
            for delivery in self._send_claimed(batch, stop):
                setattr(result, delivery.outcome, getattr(result, delivery.outcome) + 1)
        result.waiting = self.outbox.pending_count(self.dest.name)
        return result

    def send_batch(self, batch: list[Message], stop: threading.Event | None = None) -> list[Delivery]:
        """Send ``batch`` in order. The audit log gets one entry before (what is about to leave)
        and one after (every answer): per batch rather than per message, as each entry is fsynced."""
        return self._send_claimed(self.outbox.begin_attempts(batch, self._wait_if_lost), stop)

    def _wait_if_lost(self, attempts: int) -> float:
        retry = self.config.ehr.retry
        return backoff_seconds(attempts, retry.first_seconds, retry.max_seconds)

    def _send_claimed(self, batch: list[Message], stop: threading.Event | None = None) -> list[Delivery]:
        """Send messages whose attempt is counted (claimed), with the audit entries around them."""
        self.audit.record(
            "ehr.send",
            user=self.user,
            doc_ids=[m.doc_id for m in batch],
            mrns=[m.mrn for m in batch],
            details={"destination": self.dest.name, "messages": [_about(m) for m in batch]},
        )
        answers: list[dict] = []
        deliveries: list[Delivery] = []
        try:
            for message in batch:
                if stop and stop.is_set():
                    break  # the rest keep their counted attempt and go after the short first backoff
                delivery = self.send(message)
                deliveries.append(delivery)
                answers.append({**_about(message), "outcome": delivery.outcome, "answer": delivery.detail})
        finally:
            if answers:
                outcomes = {a["outcome"] for a in answers}
                self.audit.record(
                    "ehr.ack",
                    user=self.user,
                    doc_ids=[a["doc_id"] for a in answers],
                    mrns=[a["mrn"] for a in answers],
                    outcome=outcomes.pop() if len(outcomes) == 1 else "mixed",
                    details={"destination": self.dest.name, "answers": answers},
                )
        return deliveries

    def send(self, message: Message) -> Delivery:
        """Deliver one message whose attempt is already counted, and record the answer in the outbox."""
        retry = self.config.ehr.retry
        try:
            delivery = self.client.deliver(message, lambda: archived_pdf(self.config, message))
        except PdfUnavailable as exc:
            delivery = Delivery.dead(str(exc))
        except ValueError as exc:  # the message could not be built (the FHIR model refused it): no use retrying
            delivery = Delivery.dead(f"cannot build the {message.action} message for {message.doc_id}: {exc}")
        delivery = self._give_up_after_max(message, delivery)
        if delivery.outcome == "sent":
            self.outbox.delivered(message.id, delivery.receiver_id)
        elif delivery.outcome == "retry":
            wait = backoff_seconds(message.attempts, retry.first_seconds, retry.max_seconds)
            self.outbox.failed(message.id, delivery.detail, retry_at=time.time() + wait)
        else:
            self.outbox.failed(message.id, delivery.detail, retry_at=None)
        log.info(
            "ehr: message %d (%s %s v%d of %s) to %s: %s",
            message.id,
            message.action,
            message.doc_id,
            message.version,
            message.mrn,
            self.dest.name,
            delivery.outcome,
        )
        return delivery

    def _give_up_after_max(self, message: Message, delivery: Delivery) -> Delivery:
        most = self.config.ehr.retry.max_attempts
        if delivery.outcome == "retry" and most and message.attempts >= most:
            return Delivery.dead(f"gave up after {message.attempts} attempts; last answer: {delivery.detail}")
        return delivery


def _about(message: Message) -> dict:
    return {
        "message": message.id,
        "doc_id": message.doc_id,
        "mrn": message.mrn,
        "action": message.action,
        "version": message.version,
        "attempt": message.attempts,
    }


def send_once(config: Config, *, user: str | None = None, stop: threading.Event | None = None) -> list[DrainResult]:
    """`medarchive ehr send`: one pass over every destination; busy ones (another sender) are skipped."""
    results = []
    with Outbox.for_config(config, durable=False) as outbox:
        for dest in config.ehr.destinations:
            with destination_lock(config, dest.name) as mine:
                if not mine:
                    results.append(DrainResult(dest.name, busy=True))
                    continue
                sender = DestinationSender(config, dest, outbox, user=user or os_user())
                try:
                    results.append(sender.drain(stop))
                finally:
                    sender.close()
    return results


def _run_destination(config: Config, dest: FhirDestination | Hl7Destination, stop: threading.Event) -> None:
    """The daemon's loop for one destination: drain, wait for the poll period, again, until stop."""
    with Outbox.for_config(config, durable=False) as outbox:
        sender = DestinationSender(config, dest, outbox, user=os_user())
        try:
            while not stop.is_set():
                try:
                    with destination_lock(config, dest.name) as mine:
                        if mine:
                            sender.drain(stop)
                except Exception:  # never let one bad pass stop delivery for good
                    log.exception("ehr: sending to %s failed; trying again in %g s", dest.name, config.ehr.poll_seconds)
                stop.wait(config.ehr.poll_seconds)
        finally:
            sender.close()


def start_sender(config: Config, stop: threading.Event) -> threading.Thread | None:
    """Start delivering in the background (one thread per destination, under one returned thread
    that ends once ``stop`` is set and every destination has finished its current message).
    None when no destination is configured."""
    if not config.ehr.enabled:
        return None
    Outbox.for_config(config).close()  # create the file now, so a bad data root fails at start

    def supervise() -> None:
        workers = [
            threading.Thread(target=_run_destination, args=(config, dest, stop), name=f"ehr-{dest.name}", daemon=True)
            for dest in config.ehr.destinations
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    thread = threading.Thread(target=supervise, name="ehr-sender", daemon=True)
    thread.start()
    log.info("ehr: sender started for %d destination(s)", len(config.ehr.destinations))
    return thread
