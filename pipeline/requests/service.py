"""Each action on a request: checked by the pure rules, stored with its history, audited, released.

``today`` is always given by the caller (the CLI and the web pass the office's date;
tests pass a fixed one), so due dates and expiries are decided on one day throughout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from indexers.base import Index
from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import Sidecar
from pipeline.archive.store import document_dir, find_sidecar
from pipeline.core.clock import now_utc
from pipeline.core.config import Config, FeeRule, RequestRule
from pipeline.core.errors import ArchiveError, MedarchiveError
from pipeline.core.fsutil import atomic_copy, atomic_write, ensure_dir
from pipeline.identify.patients import PatientIndex
from pipeline.records import release as releases
from pipeline.requests import checks, duedates, fees, letters
from pipeline.requests.records import (
    CHANNELS,
    KINDS,
    Ask,
    Authorization,
    Extension,
    Request,
    Requester,
    RequestView,
    fee_text,
)
from pipeline.requests.store import RequestConflict, RequestStore

log = logging.getLogger("medarchive")


class RequestError(MedarchiveError):
    """A request cannot be recorded as given (the message names the field)."""


@dataclass(frozen=True)
class NewRequest:
    """A request as the clerk enters it; ``due`` only when a date is set from outside (a court's return date)."""

    mrn: str
    kind: str
    requester: Requester
    purpose: str
    ask: Ask
    channel: str
    received: date
    due: date | None = None


@dataclass(frozen=True)
class Fulfilment:
    request: Request
    release: releases.Release | None
    letter: Path | None
    withheld: tuple[Sidecar, ...]
    download: BinaryIO | None = None


def letters_dir(config: Config) -> Path:
    return config.root / "requests"


class RequestDesk:
    """The records office's requests: the store, the audit log and the archive they act on."""

    def __init__(self, config: Config, store: RequestStore, audit: AuditLog, index: Index | None = None) -> None:
        self.config = config
        self.store = store
        self.audit = audit
        self.index = index

    @classmethod
    def for_config(cls, config: Config, index: Index | None = None) -> RequestDesk:
        return cls(config, RequestStore.for_config(config), AuditLog.for_config(config), index)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RequestDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sensitive(self) -> set[str]:
        return checks.sensitive_types(self.config.classification.types)

    def queue(
        self, *, user: str, status: str | None = None, mrn: str | None = None, open_only: bool = False
    ) -> list[Request]:
        rows = self.store.find(status=status, mrn=mrn, open_only=open_only)
        self.audit.record(
            "request.list",
            user=user,
            mrns=[r.mrn for r in rows],
            details={"filters": {"status": status, "mrn": mrn, "open": open_only}, "results": len(rows)},
        )
        return rows

    def show(self, request_id: int, *, user: str) -> RequestView:
        request = self.store.get(request_id)
        self.audit.record("request.show", user=user, mrns=[request.mrn], details={"request": request.id})
        return RequestView(request, self.store.history(request.id))

    def due_soon(self, today: date) -> tuple[list[Request], list[Request]]:
        """Open requests overdue, and due within ``due_soon_days`` (counts and ids for `status`: no audit)."""
        horizon = today + timedelta(days=self.config.requests.due_soon_days)
        open_ = self.store.find(open_only=True)
        return [r for r in open_ if r.overdue(today)], [r for r in open_ if today <= r.due_on() <= horizon]

    def planned(self, request: Request) -> checks.Plan:
        """What fulfilling would release now, and what it would leave out (raises a refusal as fulfil would)."""
        return checks.plan(
            request, releases.select_documents(self.config, self._release_request(request)), self.sensitive
        )

    def document(self, doc_id: str) -> Sidecar | None:
        try:
            return find_sidecar(self.config, doc_id, self.index)
        except (ArchiveError, OSError, ValueError, KeyError):
            return None

    def add(self, new: NewRequest, *, user: str, today: date) -> Request:
        self._check_new(new, today)
        rule = self.config.requests.rules[new.kind]
        if new.due is not None:
            duedates.check_given_due(new.due, new.received, today)
            due = new.due
        else:
            due = duedates.due_date(new.received, rule, self.config.requests.holidays)
        request = Request(
            id=0,
            mrn=new.mrn,
            kind=new.kind,
            requester=new.requester,
            purpose=new.purpose.strip(),
            ask=new.ask,
            channel=new.channel,
            received=new.received.isoformat(),
            due=due.isoformat(),
            rule={**rule.model_dump(mode="json"), "due_given": new.due is not None},
            status="received",
            created_at=now_utc(),
            created_by=user,
        )
        stored = self.store.add(request, at=request.created_at)
        self._audit("request.add", stored, user, None, details={"kind": new.kind, "due": stored.due})
        log.info("request %d added: MRN %s, %s, due %s", stored.id, stored.mrn, stored.kind, stored.due)
        return stored

    def extend(self, request_id: int, *, reason: str, told: date | None, user: str, today: date) -> Request:
        request = self.store.get(request_id)
        checks.check_open(request)
        rule = RequestRule(**{k: v for k, v in request.rule.items() if k != "due_given"})
        due = duedates.extended_due(
            request.due_on(),
            rule,
            already=request.extension is not None,
            reason=reason,
            told=told,
            today=today,
            holidays=self.config.requests.holidays,
        )
        extension = Extension(due.isoformat(), reason.strip(), told.isoformat() if told else "")
        return self._change(
            request,
            "extend",
            "in_progress",
            user,
            f"due {request.due} -> {due}: {reason.strip()}",
            due=due.isoformat(),
            extension=extension,
        )

    def link_authorization(
        self, request_id: int, doc_id: str, *, expires: date, covers: Iterable[str] = (), user: str, today: date
    ) -> Request:
        request = self.store.get(request_id)
        doc = self.document(doc_id)
        covers = tuple(sorted(set(covers)))
        checks.check_link(request, doc, doc_id, expires, covers, self.sensitive, today)
        auth = Authorization(doc_id, expires.isoformat(), covers)
        note = f"authorization {doc_id}, expires {expires}" + (f", names {', '.join(covers)}" if covers else "")
        return self._change(request, "link_auth", "in_progress", user, note, doc_ids=[doc_id], authorization=auth)

    def fulfil(
        self,
        request_id: int,
        *,
        user: str,
        today: date,
        out_dir: Path | None = None,
        as_zip: bool = False,
        actual_cost: float | None = None,
    ) -> Fulfilment:
        """Release exactly what the request covers (a download when ``out_dir`` is None), or write a
        "no records" letter when nothing answers it; refused, with nothing released, when a rule says no."""
        request = self.store.get(request_id)
        checks.check_open(request)
        auth = request.authorization
        checks.check_authorization(request, self.document(auth.doc_id) if auth else None, today)
        plan = self.planned(request)
        cents, how = 0, "no records, no charge"
        if plan.release:
            pages = sum(s.pages or 0 for s in plan.release)
            cents, how = fees.fee_cents(FeeRule(**request.rule["fee"]), pages, actual_cost)
            if out_dir is not None:
                releases.check_destination(self.config, out_dir.resolve())
        claim = self.store.claim(request, at=now_utc())
        try:
            if not plan.release:
                return self._no_records(request, plan, claim, user=user, today=today, out_dir=out_dir)
            return self._release(
                request, plan, cents, how, claim, user=user, today=today, out_dir=out_dir, as_zip=as_zip
            )
        except BaseException:
            self.store.unclaim(request.id)
            raise

    def _release(
        self,
        request: Request,
        plan: checks.Plan,
        cents: int,
        how: str,
        claim: str,
        *,
        user: str,
        today: date,
        out_dir: Path | None,
        as_zip: bool,
    ) -> Fulfilment:
        wanted = replace(
            self._release_request(request),
            doc_ids=tuple(s.doc_id for s in plan.release),
            request=f"{request.ref} ({request.kind}, received {request.received})",
            fee=f"{fee_text(cents)} ({how})",
            notes=tuple(n for n in (checks.requester_note(request, self.sensitive),) if n),
        )
        download = None
        if out_dir is None:
            done, download = releases.export_zip(self.config, wanted, user=user, audit=self.audit)
        else:
            done = releases.export(self.config, wanted, out_dir, user=user, audit=self.audit, as_zip=as_zip)
        note = f"release {done.release_id}: {len(done.documents)} document(s), fee {fee_text(cents)}"
        if plan.withheld:
            note += f"; {plan.withheld_note()}"
        changed = self._change(
            request,
            "fulfil",
            "fulfilled",
            user,
            note,
            doc_ids=[d["doc_id"] for d in done.documents],
            details={"release_id": done.release_id, "withheld": [s.doc_id for s in plan.withheld], "fee_cents": cents},
            release_id=done.release_id,
            released_docs=tuple(d["doc_id"] for d in done.documents),
            fee_cents=cents,
            fee_note=how,
            closed_on=today.isoformat(),
            claim=claim,
        )
        return Fulfilment(changed, done, None, plan.withheld, download)

    def deny(
        self, request_id: int, *, reason: str, note: str | None, user: str, today: date, out_dir: Path | None = None
    ) -> Fulfilment:
        request = self.store.get(request_id)
        checks.check_open(request)
        reasons = self.config.requests.denial_reasons
        if reason not in reasons:
            raise RequestError(f"unknown denial reason {reason!r}; the reasons are {', '.join(sorted(reasons))}")
        return self._close_with_letter(
            request,
            letters.draw_denial,
            {"reason": reasons[reason], "note": (note or "").strip() or None},
            "deny",
            "denied",
            user,
            f"{reason}" + (f": {note.strip()}" if note and note.strip() else ""),
            today=today,
            out_dir=out_dir,
            details={"reason": reason, "reviewable": reasons[reason].reviewable},
            denial_reason=reason,
        )

    def withdraw(self, request_id: int, *, note: str, user: str, today: date) -> Request:
        request = self.store.get(request_id)
        checks.check_open(request)
        if not note.strip():
            raise RequestError("say why the request is withdrawn (--note), e.g. the requester's letter of date")
        return self._change(request, "withdraw", "withdrawn", user, note.strip(), closed_on=today.isoformat())

    def letter(self, request_id: int, *, user: str) -> Path:
        """The request's letter (denial or no records) for the clerk to print or send; audited."""
        request = self.store.get(request_id)
        if not request.letter:
            raise RequestError(f"request {request.id} has no letter (only denied and no-records requests have one)")
        self.audit.record("request.letter", user=user, mrns=[request.mrn], details={"request": request.id})
        return self.config.root / request.letter

    def _check_new(self, new: NewRequest, today: date) -> None:
        if new.kind not in KINDS:
            raise RequestError(f"unknown requester kind {new.kind!r}; the kinds are {', '.join(KINDS)}")
        if new.channel not in CHANNELS:
            raise RequestError(f"unknown channel {new.channel!r}; it came by {', '.join(CHANNELS)}")
        if not new.requester.name.strip():
            raise RequestError("a request needs the requester's name (--requester)")
        if not new.purpose.strip():
            raise RequestError("a request needs its purpose (--purpose)")
        if new.ask.is_empty():
            raise RequestError(
                "say what the request asks for: --all, or --type, --from/--to, --doc (only that is released)"
            )
        self._check_patient(new.mrn)
        releases.check_types(self.config, new.ask.doc_types)
        duedates.check_received(new.received, today)
        for doc_id in new.ask.doc_ids:
            doc = self.document(doc_id)
            if doc is None or doc.mrn != new.mrn:
                raise RequestError(f"document {doc_id} is not a document of MRN {new.mrn}")

    def _check_patient(self, mrn: str) -> None:
        if not self.config.extraction.is_mrn(mrn):
            raise RequestError(
                f"{mrn!r} is not an MRN (the configured pattern is {self.config.extraction.mrn_pattern})"
            )
        if document_dir(self.config, "filed", mrn).is_dir():
            return
        patients = PatientIndex.for_config(self.config)
        try:
            known = patients.get(mrn) is not None
        finally:
            patients.close()
        if not known:
            raise RequestError(
                f"MRN {mrn} is not a patient of this archive or the patient index; check the number on the request"
            )

    def _release_request(self, request: Request) -> releases.ReleaseRequest:
        ask = request.ask
        return releases.ReleaseRequest(
            mrn=request.mrn,
            requester=request.requester.label(),
            purpose=request.purpose,
            doc_types=ask.doc_types,
            date_from=ask.date_from,
            date_to=ask.date_to,
            doc_ids=ask.doc_ids,
        )

    def _no_records(
        self, request: Request, plan: checks.Plan, claim: str, *, user: str, today: date, out_dir: Path | None
    ) -> Fulfilment:
        return self._close_with_letter(
            request,
            letters.draw_no_records,
            {"protected": checks.requester_note(request, self.sensitive)},
            "fulfil",
            "fulfilled",
            user,
            "no records" + (f"; {plan.withheld_note()}" if plan.withheld else ""),
            today=today,
            out_dir=out_dir,
            withheld=plan.withheld,
            details={"no_records": True, "withheld": [s.doc_id for s in plan.withheld]},
            fee_cents=0,
            fee_note="no records, no charge",
            claim=claim,
        )

    def _close_with_letter(
        self,
        request: Request,
        draw: Callable[..., None],
        drawn: dict[str, Any],
        action: str,
        status: str,
        user: str,
        note: str,
        *,
        today: date,
        out_dir: Path | None,
        withheld: tuple[Sidecar, ...] = (),
        details: dict | None = None,
        **fields: Any,
    ) -> Fulfilment:
        """Write the request's letter, then close it; a request that changed meanwhile keeps no letter."""
        folder = self._letter_folder(out_dir)
        what = "denial" if status == "denied" else "no-records"
        letter = ensure_dir(letters_dir(self.config)) / f"{request.ref}-{what}.pdf"
        facility = self.config.requests.facility
        atomic_write(letter, lambda temp: draw(temp, facility=facility, today=today, request=request, **drawn))
        try:
            changed = self._change(
                request,
                action,
                status,
                user,
                note,
                details=details,
                letter=self._relative(letter),
                closed_on=today.isoformat(),
                **fields,
            )
        except RequestConflict:
            letter.unlink(missing_ok=True)
            raise
        return Fulfilment(changed, None, atomic_copy(letter, folder / letter.name) if folder else letter, withheld)

    def _letter_folder(self, out_dir: Path | None) -> Path | None:
        """The folder a copy of the letter goes to, checked and made before the request changes."""
        if out_dir is None:
            return None
        out_dir = out_dir.resolve()
        if out_dir.is_relative_to(self.config.root):
            raise RequestError(f"{out_dir} is inside the data root; give a folder outside {self.config.root}")
        try:
            return ensure_dir(out_dir)
        except OSError as exc:
            raise RequestError(f"cannot make the folder {out_dir} for the letter: {exc.strerror}") from None

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.config.root))

    def _change(
        self,
        request: Request,
        action: str,
        status: str,
        user: str,
        note: str,
        *,
        doc_ids: Iterable[str] = (),
        details: dict | None = None,
        **fields,
    ) -> Request:
        changed = self.store.change(request, action=action, status=status, by=user, at=now_utc(), note=note, **fields)
        self._audit(f"request.{action}", changed, user, request.status, doc_ids=doc_ids, details=details)
        log.info("request %d: %s -> %s (%s)", request.id, request.status, status, action)
        return changed

    def _audit(
        self,
        action: str,
        request: Request,
        user: str,
        before: str | None,
        *,
        doc_ids: Iterable[str] = (),
        details: dict | None = None,
    ) -> None:
        self.audit.record(
            action,
            user=user,
            doc_ids=doc_ids,
            mrns=[request.mrn],
            reason=request.purpose,
            details={"request": request.id, "from": before, "to": request.status, **(details or {})},
        )
