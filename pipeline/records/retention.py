"""Retention: which documents are past their retention period, and their logged destruction.

A document is kept ``years_by_type`` (else ``default_years``) from its document
date, and a minor's at least until ``age_of_majority + minor_years_after_majority``.
Only filed, dated documents of patients without a legal hold are ever destroyed;
every destruction is written to a hash-chained log first, which outlives them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from indexers.base import Index
from pipeline.archive.audit import AuditLog, ChainedLog, DatabaseChainedLog, chained_log, os_user
from pipeline.archive.derived import remove_derived
from pipeline.archive.sidecar import Sidecar, read_sidecar
from pipeline.archive.store import iter_sidecar_paths
from pipeline.core.clock import now_utc
from pipeline.core.config import Config, RetentionSettings
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import fsync_dir, sha256_file

log = logging.getLogger("medarchive")

Bucket = Literal["due", "held", "review", "undated", "kept"]


class RetentionError(MedarchiveError):
    """Documents cannot be assessed or destroyed as asked."""


def destruction_log(config: Config) -> ChainedLog | DatabaseChainedLog:
    return chained_log(config, "destruction")


@dataclass(frozen=True)
class Assessment:
    """One document's retention: ``keep_until`` is the last day it must be kept (None: undated)."""

    bucket: Bucket
    doc_id: str
    mrn: str | None
    doc_type: str
    doc_date: str | None
    pages: int
    sha256: str
    path: str
    keep_until: str | None
    rule: str


@dataclass
class RetentionReport:
    today: str
    due: list[Assessment] = field(default_factory=list)
    held: list[Assessment] = field(default_factory=list)
    review: list[Assessment] = field(default_factory=list)
    undated: list[Assessment] = field(default_factory=list)

    def listed(self) -> list[Assessment]:
        return self.due + self.held + self.review + self.undated


def _parse(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def keep_until(doc_type: str, doc_date: date, dob: date | None, rules: RetentionSettings) -> tuple[date, str]:
    """The last day a document must be kept, and the rule that decides it."""
    years = rules.years_by_type.get(doc_type, rules.default_years)
    named = doc_type if doc_type in rules.years_by_type else "default"
    until, rule = add_years(doc_date, years), f"{named}: {years} years from the document date"
    minor_age = rules.age_of_majority + rules.minor_years_after_majority
    if dob is None:
        # Without a birth date the patient may have been a minor; born on the
        # document date is the latest the minor rule could ever reach.
        floor, floor_rule = (
            add_years(doc_date, minor_age),
            f"no date of birth, kept as a minor's: {minor_age} years from the document date",
        )
    elif doc_date < add_years(dob, rules.age_of_majority):
        floor, floor_rule = add_years(dob, minor_age), f"minor at the time: kept until age {minor_age}"
    else:
        return until, rule
    return (floor, floor_rule) if floor > until else (until, rule)


def assess(sidecar: Sidecar, rules: RetentionSettings, today: date) -> Assessment:
    doc_date = _parse(sidecar.doc_date)
    common: dict[str, Any] = {
        "doc_id": sidecar.doc_id,
        "mrn": sidecar.mrn,
        "doc_type": sidecar.doc_type,
        "doc_date": sidecar.doc_date,
        "pages": sidecar.pages,
        "sha256": sidecar.sha256,
        "path": sidecar.path,
    }
    if doc_date is None:
        return Assessment("undated", **common, keep_until=None, rule="undated: never destroyed")
    until, rule = keep_until(sidecar.doc_type, doc_date, _parse(sidecar.dob), rules)
    if today <= until:
        bucket: Bucket = "kept"
    elif sidecar.status != "filed":
        bucket, rule = "review", rule + "; waiting in the review queue, never destroyed from there"
    elif sidecar.mrn in rules.legal_holds:
        bucket, rule = "held", rule + "; legal hold on this MRN"
    else:
        bucket = "due"
    return Assessment(bucket, **common, keep_until=until.isoformat(), rule=rule)


def retention_report(config: Config, today: date) -> RetentionReport:
    """Every document past retention (due, held, in review) and every undated one."""
    report = RetentionReport(today.isoformat())
    for path in iter_sidecar_paths(config):
        try:
            item = assess(read_sidecar(path), config.retention, today)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RetentionError(
                f"cannot assess {path.relative_to(config.root)} ({exc}); run `medarchive verify`"
            ) from None
        if item.bucket != "kept":
            getattr(report, item.bucket).append(item)
    return report


@dataclass
class PurgeResult:
    destroyed: list[Assessment] = field(default_factory=list)
    refused: list[tuple[Assessment, str]] = field(default_factory=list)


def _destroy(config: Config, item: Assessment, ledger: ChainedLog | DatabaseChainedLog, user: str) -> str | None:
    """Log, then delete one document; return why it was refused instead, if it was."""
    pdf = config.root / item.path
    if not pdf.is_file() or sha256_file(pdf) != item.sha256:
        return "missing or altered (does not match its SHA-256): kept as evidence, run `medarchive verify`"
    ledger.append(
        {
            "at": now_utc(),
            "user": user,
            "os_user": os_user(),
            "action": "destroyed",
            **{k: v for k, v in asdict(item).items() if k != "bucket"},
        }
    )
    # The sidecar goes first: without it the document no longer exists for any
    # reader, and a PDF left by a crash here is reported by verify as an orphan.
    pdf.with_suffix(".json").unlink()
    pdf.unlink()
    fsync_dir(pdf.parent)
    remove_derived(config, [item.sha256])
    return None


def purge(config: Config, index: Index, *, user: str, audit: AuditLog, today: date) -> PurgeResult:
    """Destroy every document due for destruction, from the archive and the index."""
    result = PurgeResult()
    ledger = destruction_log(config)
    for item in retention_report(config, today).due:
        refused = _destroy(config, item, ledger, user)
        if refused:
            result.refused.append((item, refused))
        else:
            result.destroyed.append(item)
    _record(audit, result, user)
    log.info("retention purge: %d destroyed, %d refused", len(result.destroyed), len(result.refused))
    _unindex(index, [item.doc_id for item in result.destroyed])
    return result


def _record(audit: AuditLog, result: PurgeResult, user: str) -> None:
    items = result.destroyed + [item for item, _ in result.refused]
    audit.record(
        "retention.purge",
        user=user,
        doc_ids=[i.doc_id for i in items],
        mrns=[i.mrn for i in items],
        outcome="ok" if not result.refused else "partial",
        details={
            "destroyed": [i.doc_id for i in result.destroyed],
            "refused": {i.doc_id: why for i, why in result.refused},
        },
    )


def _unindex(index: Index, doc_ids: Iterable[str]) -> None:
    ids = list(doc_ids)
    try:
        index.delete(ids)
    except MedarchiveError as exc:
        raise RetentionError(
            f"{len(ids)} document(s) were destroyed and logged, but the index still lists them ({exc}); "
            "run `medarchive verify --repair-index`"
        ) from None
