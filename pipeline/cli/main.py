"""The `medarchive` command: a thin layer that parses, calls the library and prints.

Expected failures (bad config, unknown document, busy index) print one line on
stderr and exit 1; ``ingest`` exits 2 when any input was set aside as failed.

Start-up is kept short (a clerk runs ``search`` all day): this module imports only
click and the config; each command imports what it uses when it runs, and the
command groups of the other modules are listed in ``LAZY_COMMANDS`` and imported
only when one of them is run (see pipeline/cli/lazy.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import (
    CONFIG_ENV,
    EXIT_FAILED_INPUTS,
    actor,
    check_doc_type,
    date_option,
    doc_type_option,
    json_option,
    with_config,
)
from pipeline.cli.lazy import Lazy, LazyGroup
from pipeline.core.errors import MedarchiveError
from pipeline.core.models import OUTCOME_STATUSES
from pipeline.core.printable import PrintableFormatter

if TYPE_CHECKING:
    from pipeline.archive.sidecar import Sidecar
    from pipeline.core.config import Config
    from pipeline.runs.run import Outcome

EXIT_USAGE = 1
STATUSES = click.Choice(["filed", "review"])

# The other modules' commands: name -> where it is and the first paragraph of its help
# (shown by --help without importing it; tests/unit/test_cli_lazy.py checks both).
LAZY_COMMANDS: dict[str, Lazy] = {
    "audit": Lazy(
        "pipeline.cli.records:audit",
        "Who did what to which patient's records, when and why; `audit verify` checks the chain.",
    ),
    "export": Lazy(
        "pipeline.cli.records:export",
        "Release a patient's documents with a manifest and a cover sheet, and record the disclosure.",
    ),
    "disclosures": Lazy(
        "pipeline.cli.records:disclosures",
        "The accounting of disclosures of one patient: when, to whom, why, what.",
    ),
    "verify": Lazy(
        "pipeline.cli.records:verify",
        "Re-hash every archived file, check permissions and the index; exit 3 when anything is wrong.",
    ),
    "retention": Lazy(
        "pipeline.cli.records:retention", "Retention periods: documents past them, and their logged destruction."
    ),
    "backlog": Lazy(
        "pipeline.cli.backlog:backlog",
        "Take in a folder tree of PDFs and page images (TIFF/PNG/JPEG); the files are never modified.",
    ),
    "serve": Lazy("pipeline.cli.web:serve", "The clerks' web interface (put a TLS reverse proxy in front of it)."),
    "user": Lazy("pipeline.cli.web:user", "Web accounts: add, change password or role, disable, enable, list."),
    "patients": Lazy(
        "pipeline.cli.patients:patients",
        "The patient index that documents are checked against (kept current by `hl7 listen`).",
    ),
    "hl7": Lazy("pipeline.cli.hl7:hl7_group", "The registration system's ADT feed: patient updates and merges."),
    "ehr": Lazy("pipeline.cli.ehr:ehr_group", "Documents handed to the EHR (FHIR DocumentReference, HL7 v2 MDM)."),
    "classifier": Lazy(
        "pipeline.cli.classifier:classifier_group",
        "The document-type model learned from titled and clerk-typed documents.",
    ),
    "appointments": Lazy(
        "pipeline.cli.clinic:appointments",
        "Upcoming appointments (from the scheduling system's SIU feed, or a CSV export).",
    ),
    "prep": Lazy(
        "pipeline.cli.clinic:prep",
        "Build the chart packet of each appointment: what the clinic wants, and what is missing.",
    ),
    "boxes": Lazy(
        "pipeline.cli.boxes:boxes",
        "Paper originals in numbered off-site boxes: list, show, assign, close, ship, recall, destroy.",
    ),
    "db": Lazy("pipeline.cli.db:db", "The shared database of a several-site deployment (database.url)."),
    "requests": Lazy(
        "pipeline.cli.requests:requests",
        "Requests for information: logged, on the clock, checked against their authorization, fulfilled.",
    ),
}


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_COMMANDS)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    show_envvar=True,
    help="config file (default ./config.yaml)",
)
@click.option("--user", help="the person you act for, recorded in the audit log (default: your login)")
@click.option("-v", "--verbose", is_flag=True, help="log each step on stderr")
def cli(config, user, verbose):
    """Scanned medical records in, a patient-keyed searchable archive out."""
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def _outcome_line(outcome: Outcome) -> str:
    name = outcome.source.display_name
    if len(outcome.documents) > 1:
        parts = [f"split      {name} into {len(outcome.documents)} documents"]
        for doc in outcome.documents:
            where = f"(MRN {doc['mrn']})" if doc["status"] == "filed" else f": {doc['review_reason']}"
            parts.append(f"  {doc['status']:<8} pages {doc['pages'][0]}-{doc['pages'][-1]} -> {doc['path']} {where}")
        return "\n".join(parts)
    if outcome.status == "filed":
        return f"filed      {name} -> {outcome.path} (MRN {outcome.mrn}, {outcome.pages} pages)"
    if outcome.status == "review":
        return f"review     {name} -> {outcome.path}: {outcome.reason}"
    if outcome.status in ("duplicate", "skipped"):
        return f"{outcome.status:<10} {name}: {outcome.reason}"
    return f"failed     {name} -> {outcome.path}: {outcome.reason}"


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@with_config
def ingest(config: Config, paths: tuple[Path, ...]):
    """File PDFs (files or folders of PDFs); the inputs are never modified."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index
    from pipeline.runs.run import Pipeline, collect_inputs, make_executor

    counts = dict.fromkeys(OUTCOME_STATUSES, 0)

    def report(outcome: Outcome) -> None:
        counts[outcome.status] += 1
        click.echo(_outcome_line(outcome))

    index = open_index(config)
    with make_executor(config) as executor:
        pipeline = Pipeline(config, index, executor, on_outcome=report, audit=AuditLog.for_config(config), user=actor())
        pipeline.run(collect_inputs(paths))
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    click.echo(f"{sum(counts.values())} inputs: {summary}", err=True)
    if counts["failed"]:
        sys.exit(EXIT_FAILED_INPUTS)


def _absolute(config: Config, relative: str) -> str:
    return str(config.root / relative)


@cli.command()
@click.argument("words", nargs=-1)
@click.option("--mrn")
@doc_type_option()
@date_option("--from", "date_from", "document date on or after")
@date_option("--to", "date_to", "document date on or before")
@click.option("--status", type=STATUSES)
@click.option("--site", help="only documents filed by this site (several sites share one database)")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@json_option()
@with_config
def search(config: Config, words, mrn, doc_type, date_from, date_to, status, site, limit, as_json):
    """Ranked full-text search (Whoosh syntax: "phrases", AND/OR/NOT, field:value).

    The words may be given apart (search murphy lab); a phrase needs its quotes kept
    from the shell: search '"chest pain"'.
    """
    import dataclasses

    from indexers.base import SearchFilters
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index

    check_doc_type(config, doc_type)
    query = " ".join(words)
    filters = SearchFilters(mrn=mrn, doc_type=doc_type, status=status, date_from=date_from, date_to=date_to, site=site)
    hits = open_index(config).search(query, filters, limit)
    AuditLog.for_config(config).record(
        "search",
        user=actor(),
        doc_ids=[h.doc_id for h in hits],
        mrns=[mrn, *(h.mrn for h in hits)],
        details={"query": query, "filters": dataclasses.asdict(filters), "limit": limit, "results": len(hits)},
    )
    for n, hit in enumerate(hits, 1):
        row = {**hit.__dict__, "path": _absolute(config, hit.path)}
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        who = f"{hit.patient_name or '(no name)'} (MRN {hit.mrn})" if hit.mrn else "(review queue)"
        click.echo(
            f"{n:>3}. {hit.doc_date or 'undated'}  {hit.doc_type:<18} {who}  {hit.doc_id}  score {hit.score:.2f}"
        )
        click.echo(f"     {' '.join(hit.snippet.split())}")
    if not as_json:
        click.echo(f"{len(hits)} result(s)", err=True)


def _list_row(config: Config, sidecar: Sidecar) -> dict:
    return {
        "doc_id": sidecar.doc_id,
        "status": sidecar.status,
        "mrn": sidecar.mrn,
        "patient_name": sidecar.patient_name,
        "dob": sidecar.dob,
        "doc_type": sidecar.doc_type,
        "doc_date": sidecar.doc_date,
        "pages": sidecar.pages,
        "path": _absolute(config, sidecar.path),
        "sha256": sidecar.sha256,
        "review_reason": sidecar.review_reason,
        "source": {"file": sidecar.source.file, "pages": list(sidecar.source.pages)},
    }


def _matches(sidecar: Sidecar, mrn, doc_type, status) -> bool:
    return (
        (mrn is None or sidecar.mrn == mrn)
        and (doc_type is None or sidecar.doc_type == doc_type)
        and (status is None or sidecar.status == status)
    )


@cli.command(name="list")
@click.option("--mrn")
@doc_type_option()
@click.option("--status", type=STATUSES)
@click.option("--failed", is_flag=True, help="list the inputs set aside as failed instead")
@json_option()
@with_config
def list_(config: Config, mrn, doc_type, status, failed, as_json):
    """Every document in the archive and the review queue (read from the archive itself)."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.store import iter_failed, iter_sidecars

    check_doc_type(config, doc_type)
    if failed:
        entries = list(iter_failed(config))
        AuditLog.for_config(config).record("list", user=actor(), details={"failed": True, "results": len(entries)})
        for entry in entries:
            row = {
                "file": entry["file"],
                "reason": entry["reason"],
                "at": entry.get("at"),
                "path": _absolute(config, entry["path"]),
            }
            click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"{row['file']}: {row['reason']}")
        if not as_json:
            click.echo(f"{len(entries)} failed input(s)", err=True)
        return
    rows = [_list_row(config, s) for s in iter_sidecars(config) if _matches(s, mrn, doc_type, status)]
    AuditLog.for_config(config).record(
        "list",
        user=actor(),
        doc_ids=[r["doc_id"] for r in rows],
        mrns=[r["mrn"] for r in rows],
        details={"filters": {"mrn": mrn, "type": doc_type, "status": status}, "results": len(rows)},
    )
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(
                f"{row['doc_id']}  {row['status']:<6} {row['mrn'] or '-':<10} {row['doc_type']:<18} "
                f"{row['doc_date'] or 'undated':<10} {row['pages']:>3}p  {row['patient_name'] or ''}"
            )
    if not as_json:
        click.echo(f"{len(rows)} document(s)", err=True)


@cli.command()
@click.argument("doc_id")
@json_option("the whole sidecar as JSON")
@with_config
def show(config: Config, doc_id: str, as_json: bool):
    """One document's metadata and history."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index
    from pipeline.archive.store import find_sidecar
    from pipeline.identify.type_source import type_source

    index = open_index(config)
    try:
        sidecar = find_sidecar(config, doc_id, index)
    finally:
        index.close()
    AuditLog.for_config(config).record(
        "show", user=actor(), doc_ids=[doc_id], mrns=[sidecar.mrn], details={"json": as_json}
    )
    if as_json:
        # Keys sorted, as in the sidecar file itself.
        whole = {**sidecar.to_json(), "path": _absolute(config, sidecar.path)}
        click.echo(json.dumps(whole, ensure_ascii=False, indent=2, sort_keys=True))
        return
    row = _list_row(config, sidecar)
    for key in (
        "doc_id",
        "status",
        "mrn",
        "patient_name",
        "dob",
        "doc_type",
        "doc_date",
        "pages",
        "path",
        "sha256",
        "review_reason",
    ):
        click.echo(f"{key:>14}: {row[key] if row[key] is not None else '-'}")
    click.echo(f"{'type source':>14}: {type_source(sidecar).label}")
    click.echo(f"{'type cues':>14}: {', '.join(sidecar.type_cues) or '-'}")
    if sidecar.status == "filed":
        click.echo(f"{'corroborated':>14}: {', '.join(sidecar.corroboration) or '-'}")
    if sidecar.candidate_mrns:
        click.echo(f"{'candidates':>14}: {', '.join(sidecar.candidate_mrns)}")
    click.echo(f"{'source':>14}: {row['source']['file']} pages {row['source']['pages']}")
    from pipeline.paper.boxes import paper_line

    if (paper := paper_line(config, sidecar)) is not None:
        click.echo(f"{'paper':>14}: {paper}")
    for event in sidecar.history:
        click.echo(f"{'history':>14}: {event.at} {event.by}: {event.action}")


@cli.command(name="types")
@json_option()
@with_config
def types_(config: Config, as_json: bool):
    """The document types: the names --type takes, with their titles and search synonyms."""
    synonyms = config.index.type_synonyms
    rows = [
        {"type": name, "titles": rule.titles, "synonyms": synonyms.get(name, [])}
        for name, rule in config.classification.types.items()
    ]
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        click.echo(f"{row['type']:<20} {'; '.join(row['titles']) or '-'}")
        if row["synonyms"]:
            click.echo(f"{'':<20} also found by: {', '.join(row['synonyms'])}")
    if not as_json:
        click.echo(f"{len(rows)} document type(s), and unclassified for a document no type wins", err=True)


@cli.command()
@click.option("--site", help="rebuild only the documents this site filed (several sites share one database)")
@with_config
def reindex(config: Config, site: str | None):
    """Rebuild the search index from the archive alone."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index
    from pipeline.archive.store import iter_sidecars, record_from_sidecar

    records = (record_from_sidecar(s) for s in iter_sidecars(config))
    if site is not None:
        records = (record for record in records if record.site == site)
    count = open_index(config).rebuild(records, site)
    AuditLog.for_config(config).record("reindex", user=actor(), details={"documents": count, "site": site})
    click.echo(f"reindexed {count} document(s)" + (f" of site {site}" if site else ""))


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", default=6, show_default=True, type=click.IntRange(1, 500))
@click.option("--seed", default=0, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when the folder already holds files")
@click.option("--box", help="start the first file with a box label sheet naming this off-site box (BOX-000123)")
@with_config
def samples(config: Config, folder: Path | None, count: int, seed: int, if_empty: bool, box: str | None):
    """Write generated sample scans (fictional patients) into FOLDER (default: the drop folder)."""
    target = folder or config.drop_dir
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    if if_empty and any(target.iterdir()):
        click.echo(f"{target} already holds files; no samples written", err=True)
        return
    if box is not None and not config.boxes.is_box(box):
        raise click.BadParameter(f"{box!r} does not match boxes.label_pattern {config.boxes.label_pattern!r}")
    from pipeline.samples.scans import write_sample_set

    click.echo(f"writing {count} sample scan(s) to {target} (a few seconds each)", err=True)

    def progress(path: Path) -> None:
        done[0] += 1
        click.echo(f"  {done[0]}/{count} {path.name}", err=True)

    done = [0]
    written = write_sample_set(target, count=count, seed=seed, box=box, on_written=progress)
    click.echo(f"wrote {len(written)} sample scan(s) to {target}", err=True)


@cli.group()
def review():
    """The review queue: what waits, and filing it."""


@review.command(name="list")
@json_option()
@with_config
def review_list(config: Config, as_json: bool):
    """Documents waiting for a clerk, with the reason and the suggested patient and type."""
    from pipeline.archive.audit import AuditLog
    from pipeline.records.review import waiting as review_queue

    rows = [
        {
            **_list_row(config, s),
            "suggested_mrn": s.suggested_mrn,
            "type_confidence": s.type_confidence,
            "waiting_since": s.since,
        }
        for s in review_queue(config)
    ]
    AuditLog.for_config(config).record(
        "list",
        user=actor(),
        doc_ids=[r["doc_id"] for r in rows],
        mrns=[r["suggested_mrn"] for r in rows],
        details={"review_queue": True, "results": len(rows)},
    )
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        click.echo(
            f"{row['doc_id']}  {row['waiting_since']}  {row['doc_type']:<18} suggested MRN {row['suggested_mrn'] or '-'}"
        )
        click.echo(f"    {row['source']['file']} pages {row['source']['pages']}: {row['review_reason']}")
    if not as_json:
        click.echo(f"{len(rows)} document(s) waiting", err=True)


@review.command(name="assign")
@click.argument("doc_id")
@click.option("--mrn", required=True)
@doc_type_option("the document's type, to correct it")
@with_config
def review_assign(config: Config, doc_id: str, mrn: str, doc_type: str | None):
    """File a reviewed document under MRN (and optionally correct its type)."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index
    from pipeline.records import review as review_docs

    check_doc_type(config, doc_type)
    moved = review_docs.assign(
        config, open_index(config), AuditLog.for_config(config), doc_id, mrn=mrn, doc_type=doc_type, user=actor()
    )
    click.echo(f"filed {doc_id} -> {moved.path}")


@cli.command()
@click.argument("doc_id")
@click.option("--mrn", required=True)
@doc_type_option("the document's type, to correct it")
@click.option("--reason", required=True, help="why it was misfiled (kept in its history)")
@with_config
def reassign(config: Config, doc_id: str, mrn: str, doc_type: str | None, reason: str):
    """Move a misfiled document to the right patient: archive, history and index together."""
    from pipeline.archive.audit import AuditLog
    from pipeline.archive.index import open_index
    from pipeline.records import review as review_docs

    check_doc_type(config, doc_type)
    moved = review_docs.reassign(
        config,
        open_index(config),
        AuditLog.for_config(config),
        doc_id,
        mrn=mrn,
        doc_type=doc_type,
        user=actor(),
        reason=reason,
    )
    click.echo(f"moved {doc_id} -> {moved.path}")


@cli.command()
@with_config
def watch(config: Config):
    """Run the drop-folder daemon until SIGTERM or Ctrl-C."""
    from pipeline.archive.index import open_index
    from watch_folders.daemon import stop_on_signals, watch_until_stopped

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    stop_on_signals(stop)
    sys.exit(watch_until_stopped(config, open_index, stop))


@cli.command()
@json_option("as one JSON object")
@click.option("--site", help="another site's daemon (several sites on the shared database)")
@with_config
def status(config: Config, as_json: bool, site: str | None):
    """Whether the daemon runs, what waits, what is in flight, today's counts, last errors."""
    from pipeline.core.clock import today_local
    from pipeline.core.config import Config
    from pipeline.ehr.merge_review import hl7_status
    from pipeline.ehr.outbox import outbox_counts
    from pipeline.requests.service import RequestDesk
    from watch_folders.activity import status as read_status

    if site is not None:
        config = Config.model_validate({**config.model_dump(), "site": site})
    state = read_status(config)
    ehr = outbox_counts(config)

    with RequestDesk.for_config(config) as desk:
        overdue, due_soon = desk.due_soon(today_local())
    hl7 = hl7_status(config)
    if as_json:
        due = {"overdue": [r.id for r in overdue], "due_soon": [r.id for r in due_soon]}
        body = {**state.__dict__, "today": dict(state.today), "ehr": ehr, "hl7": hl7, "requests": due}
        click.echo(json.dumps({**body, "site": config.site}, ensure_ascii=False))
        return
    if config.database.url is not None:
        click.echo(f"site:       {config.site}")
    running = f"running (pid {state.daemon_pid})" if state.daemon_pid else "not running"
    click.echo(f"daemon:     {running}")
    click.echo(f"waiting:    {state.waiting} file(s) in the drop folders")
    click.echo(f"in flight:  {state.in_flight} file(s) in processing/")
    counts = ", ".join(f"{state.today.get(k, 0)} {k}" for k in OUTCOME_STATUSES)
    click.echo(f"today:      {counts}")
    for entry in state.last_errors:
        click.echo(f"error:      {entry['at']} {entry['file']}: {entry['reason']}")
    for name, by_state in sorted(ehr.items()):
        click.echo(f"ehr:        {name}: " + ", ".join(f"{n} {state_}" for state_, n in by_state.items()))
    if overdue or due_soon:
        click.echo(
            f"requests:   {len(overdue)} overdue, {len(due_soon)} due in the next {config.requests.due_soon_days} days"
        )
    for request in [*overdue, *due_soon]:
        # Ids only: status is the unaudited operations view; `requests show` (audited) names the patient.
        click.echo(f"request:    {request.ref} due {request.due} ({request.kind})")
    click.echo(
        f"hl7:        listener {'enabled' if hl7['enabled'] else 'not enabled'} on {hl7['listen']}, {hl7['transport']}; "
        f"merge policy {hl7['merge_policy']}; {hl7['held_merges']} merge(s) held for review"
    )


def main(argv: list[str] | None = None) -> None:
    """The `medarchive` command on ``argv`` (default: the process's arguments)."""
    os.umask(0o077)
    try:
        cli.main(args=argv, standalone_mode=False)
    except MedarchiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
