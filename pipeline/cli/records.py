"""Records-management commands: audit trail, release of information, integrity, retention.

Written like pipeline/cli.py (a thin click layer); registered on the `medarchive`
group from the list ``COMMANDS``. The acting user is the root group's ``--user``
when there is one, else the OS user. Each command records its audit entry before
it prints anything: no patient data is shown without a trail. Exit 3 means a
check found problems.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import click

from pipeline.archive.audit import ACTIONS, AuditFilters, AuditLog
from pipeline.archive.index import open_index
from pipeline.cli.common import actor, date_option, json_option, with_config
from pipeline.core.config import Config
from pipeline.core.printable import printable, printable_json
from pipeline.records import release as releases
from pipeline.records import retention as retention_rules
from pipeline.records.verify import verify as verify_archive

EXIT_PROBLEMS = 3


def _today() -> date:
    return datetime.now(UTC).date()


def _few(values: list[str], label: str, shown: int = 3) -> str:
    if not values:
        return ""
    more = f" +{len(values) - shown} more" if len(values) > shown else ""
    return f"  {label} {', '.join(values[:shown])}{more}"


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _brief(details: dict, width: int = 60) -> str:
    """Details on one line: nested settings as key.sub=value (unset ones left out), lists as
    their length, long text shortened inside its quotes (--json has them whole)."""
    parts = [f"{key}={text}" for key, text in _flat(details, "", width)]
    return "  " + " ".join(parts) if parts else ""


def _flat(details: dict, prefix: str, width: int) -> list[tuple[str, str]]:
    parts = []
    for key, value in sorted(details.items()):
        if isinstance(value, dict):
            parts.extend(_flat(value, f"{prefix}{key}.", width))
        elif value is not None:
            if isinstance(value, list):
                text = f"[{len(value)}]"
            elif isinstance(value, str) and len(value) > width:
                text = json.dumps(value[: width - 1] + "…", ensure_ascii=False)
            else:
                text = json.dumps(value, ensure_ascii=False)
            parts.append((prefix + key, text))
    return parts


def _entry_line(entry: dict) -> str:
    who = entry["user"] if entry["user"] == entry["os_user"] else f"{entry['user']} (by {entry['os_user']})"
    why = f"  why: {entry['reason']}" if entry.get("reason") else ""
    details = _brief(entry.get("details") or {})
    return (
        f"{entry['at']}  #{entry['seq']:<6} {who:<16} {entry['action']:<16} {entry['outcome']:<8}"
        f"{_few(entry['mrns'], 'MRN')}{_few(entry['doc_ids'], 'docs')}{why}{details}"
    )


@click.group(invoke_without_command=True)
@click.option("--mrn", help="entries about this patient")
@click.option("--user", "by_user", help="entries of this user (acting or OS user)")
@click.option("--action", type=click.Choice(sorted(ACTIONS)))
@click.option("--doc", "doc_id", help="entries about this document id")
@date_option("--from", "date_from", "on or after this day, UTC")
@date_option("--to", "date_to", "on or before this day, UTC")
@json_option()
@with_config
def audit(config: Config, mrn, by_user, action, doc_id, date_from, date_to, as_json):
    """Who did what to which patient's records, when and why; `audit verify` checks the chain."""
    ctx = click.get_current_context()
    if ctx.invoked_subcommand:
        ctx.obj = config
        return
    filters = AuditFilters(mrn=mrn, user=by_user, action=action, doc_id=doc_id, date_from=date_from, date_to=date_to)
    trail = AuditLog.for_config(config)
    rows = list(trail.entries(filters))
    # Reading the trail shows who saw which patient: that is itself an access.
    trail.record(
        "audit",
        user=actor(),
        doc_ids=[doc_id] if doc_id else [],
        mrns=[mrn],
        details={"filters": asdict(filters), "results": len(rows)},
    )
    for entry in rows:
        click.echo(printable_json(json.dumps(entry, ensure_ascii=False)) if as_json else printable(_entry_line(entry)))
    if not as_json:
        click.echo(_entries(len(rows)), err=True)


@audit.command(name="verify")
@click.pass_obj
def audit_verify(config: Config):
    """Check the audit and destruction logs' hash chains; exit 3 at a broken entry."""
    broken = False
    for name, chain in (
        ("audit log", AuditLog.for_config(config)),
        ("destruction log", retention_rules.destruction_log(config)),
    ):
        check = chain.verify()
        if check.ok:
            click.echo(f"{name}: {_entries(check.entries)}, chain intact, head {check.head}")
            continue
        broken = True
        click.echo(
            f"{name}: BROKEN at line {check.line}: {check.problem} (the {check.entries} entries before it are intact)"
        )
    if broken:
        sys.exit(EXIT_PROBLEMS)


@click.command()
@click.option("--mrn", required=True, help="the patient whose records are released")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="a new or empty folder"
)
@click.option("--requester", required=True, help="who receives the records (person and organisation)")
@click.option("--purpose", required=True, help="why they are released (e.g. continuity of care, patient's request)")
@click.option("--type", "doc_types", multiple=True, help="only this document type (repeatable)")
@date_option("--from", "date_from", "documents dated on or after")
@date_option("--to", "date_to", "documents dated on or before")
@click.option(
    "--include-review", is_flag=True, help="also release review-queue documents that name this MRN (unconfirmed)"
)
@click.option("--doc", "doc_ids", multiple=True, help="only this document id of the patient (repeatable)")
@click.option("--zip", "as_zip", is_flag=True, help="write one zip into --out instead of loose files")
@with_config
def export(
    config: Config, mrn, out_dir, requester, purpose, doc_types, date_from, date_to, include_review, doc_ids, as_zip
):
    """Release a patient's documents with a manifest and a cover sheet, and record the disclosure."""
    request = releases.ReleaseRequest(
        mrn, requester, purpose, tuple(doc_types), date_from, date_to, include_review, doc_ids=tuple(doc_ids)
    )
    done = releases.export(config, request, out_dir, user=actor(), audit=AuditLog.for_config(config), as_zip=as_zip)
    for row in done.documents:
        click.echo(
            f"released  {row['doc_date'] or 'undated':<10} {row['doc_type']:<18} {row['doc_id']}  {row['pages']}p  {row['status']}"
        )
    click.echo(f"release {done.release_id}: {len(done.documents)} document(s) to {done.out_dir}", err=True)


@click.command()
@click.option("--mrn", required=True)
@json_option()
@with_config
def disclosures(config: Config, mrn: str, as_json: bool):
    """The accounting of disclosures of one patient: when, to whom, why, what."""
    trail = AuditLog.for_config(config)
    rows = releases.disclosures(trail, mrn)
    trail.record("disclosures", user=actor(), mrns=[mrn], details={"results": len(rows)})
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        status = "" if row["outcome"] == "ok" else f"  [{row['outcome']}]"
        status += f"  request: {row['request']}" if row.get("request") else ""
        click.echo(
            f"{row['at']}  {row['release_id']}  to: {row['requester']}  purpose: {row['purpose']}  "
            f"by: {row['released_by']}  {releases.disclosure_summary(row)}{status}"
        )
    if not as_json:
        click.echo(f"{len(rows)} disclosure(s) of MRN {mrn}", err=True)


@click.command(name="verify")
@click.option("--repair-index", is_flag=True, help="rewrite the index where it disagrees with the archive")
@click.option("--site", help="compare only this site's documents with the index (several sites share one database)")
@json_option()
@with_config
def verify(config: Config, repair_index: bool, site: str | None, as_json: bool):
    """Re-hash every archived file, check permissions and the index; exit 3 when anything is wrong."""
    report = verify_archive(config, open_index(config), repair=repair_index, site=site)
    kinds = Counter(p.kind for p in report.problems)
    AuditLog.for_config(config).record(
        "verify",
        user=actor(),
        doc_ids=[p.doc_id for p in report.problems if p.doc_id],
        mrns=[p.mrn for p in report.problems],
        outcome="ok" if report.ok else "problems",
        details={
            "documents": report.documents,
            "problems": dict(kinds),
            "repair_index": repair_index,
            "repaired": report.repaired,
            "site": site,
        },
    )
    for problem in report.problems:
        click.echo(json.dumps(asdict(problem)) if as_json else f"{problem.kind:<14} {problem.path}  {problem.detail}")
    click.echo(
        f"{report.documents} document(s) checked: {len(report.problems)} problem(s)"
        + "".join(f", {n} {kind}" for kind, n in sorted(kinds.items()))
        + (f"; {report.repaired} index record(s) repaired" if repair_index else ""),
        err=True,
    )
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)


@click.group()
def retention():
    """Retention periods: documents past them, and their logged destruction."""


def _assessment_line(item: retention_rules.Assessment) -> str:
    return (
        f"{item.bucket:<8} {item.doc_date or 'undated':<10} {item.doc_type:<18} MRN {item.mrn or '-':<10} "
        f"{item.doc_id}  keep until {item.keep_until or '-'}  ({item.rule})"
    )


def _show_report(config: Config, as_json: bool) -> retention_rules.RetentionReport:
    report = retention_rules.retention_report(config, _today())
    listed = report.listed()
    AuditLog.for_config(config).record(
        "retention.report",
        user=actor(),
        doc_ids=[i.doc_id for i in listed],
        mrns=[i.mrn for i in listed],
        details={
            "today": report.today,
            "due": len(report.due),
            "held": len(report.held),
            "review": len(report.review),
            "undated": len(report.undated),
        },
    )
    for item in listed:
        click.echo(json.dumps(asdict(item)) if as_json else _assessment_line(item))
    click.echo(
        f"{len(report.due)} past retention, {len(report.held)} on legal hold, "
        f"{len(report.review)} in the review queue, {len(report.undated)} undated (as of {report.today})",
        err=True,
    )
    return report


@retention.command()
@json_option()
@with_config
def report(config: Config, as_json: bool):
    """List documents past retention and not on hold ("due"), and those kept anyway, with why."""
    _show_report(config, as_json)


@retention.command()
@click.option("--confirm", is_flag=True, help="really destroy the documents due; without it nothing is removed")
@with_config
def purge(config: Config, confirm: bool):
    """Destroy documents past retention, from archive and index, logging each destruction."""
    if not confirm:
        due = _show_report(config, as_json=False).due
        raise retention_rules.RetentionError(
            f"{len(due)} document(s) are past retention; nothing was removed. "
            "Check them with `medarchive retention report`, then run `medarchive retention purge --confirm`"
        )
    result = retention_rules.purge(
        config, open_index(config), user=actor(), audit=AuditLog.for_config(config), today=_today()
    )
    for item in result.destroyed:
        click.echo(f"destroyed {item.doc_id}  MRN {item.mrn}  {item.doc_type}  {item.doc_date}  ({item.rule})")
    for item, why in result.refused:
        click.echo(f"refused   {item.doc_id}  MRN {item.mrn}: {why}")
    click.echo(f"{len(result.destroyed)} destroyed, {len(result.refused)} refused", err=True)
    if result.refused:
        sys.exit(EXIT_PROBLEMS)


COMMANDS: list[click.Command] = [audit, export, disclosures, verify, retention]
