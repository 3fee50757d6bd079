"""Integrity check: every archived file against its sidecar, the index against the archive.

The archive is only ever reported on: a missing or altered record needs a person
(and a backup), not an automatic fix. The index is derived, so ``repair_index``
rewrites it from the sidecars.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from indexers.base import Index, IndexRecord
from pipeline.archive.audit import audit_dir
from pipeline.archive.derived import orphan_page_images
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import record_from_sidecar
from pipeline.core.config import Config
from pipeline.core.fsutil import sha256_file
from pipeline.records.reconcile import doc_id_of

# The site is not compared: an index that keeps no sites (Whoosh) reads every record as the default's.
_COMPARED = tuple(f.name for f in fields(IndexRecord) if f.name not in ("content", "site"))
_PRIVATE_BITS = stat.S_IRWXG | stat.S_IRWXO


@dataclass(frozen=True)
class Problem:
    """One thing wrong; ``path`` is relative to the data root."""

    kind: str
    path: str
    detail: str
    doc_id: str | None = None
    mrn: str | None = None


@dataclass
class VerifyReport:
    documents: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Archive:
    """What the archive holds: the index's view of each readable document, by doc_id."""

    records: dict[str, IndexRecord] = field(default_factory=dict)
    sidecars: dict[str, Path] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


def _document_folders(config: Config) -> Iterator[tuple[Path, str | None]]:
    """Each folder that holds documents, with the MRN its documents must carry (None: review)."""
    if config.archive_dir.is_dir():
        for entry in sorted(config.archive_dir.iterdir()):
            if entry.is_dir():
                yield entry, entry.name
    if config.review_dir.is_dir():
        yield config.review_dir, None


def _stray_entries(config: Config) -> Iterator[Path]:
    if config.archive_dir.is_dir():
        yield from (p for p in sorted(config.archive_dir.iterdir()) if not p.is_dir() and not p.name.startswith("."))


def _rel(config: Config, path: Path) -> str:
    return path.relative_to(config.root).as_posix()


def _check_sidecar(config: Config, sidecar_file: Path, mrn: str | None, found: _Archive) -> None:
    rel = _rel(config, sidecar_file)
    doc_id = doc_id_of(sidecar_file)
    try:
        record = replace(record_from_sidecar(read_sidecar(sidecar_file)), content="")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        found.unreadable.add(doc_id)
        found.problems.append(
            Problem("bad_sidecar", rel, f"unreadable sidecar ({type(exc).__name__}: {exc})", doc_id, mrn)
        )
        return
    pdf = sidecar_file.with_suffix(".pdf")
    wrong = _placement_problem(record, doc_id, _rel(config, pdf), mrn)
    if wrong:
        found.problems.append(Problem("misfiled", rel, wrong, doc_id, record.mrn))
    if record.doc_id in found.records:
        other = _rel(config, found.sidecars[record.doc_id])
        found.problems.append(
            Problem("duplicate_id", rel, f"the same document id is also filed as {other}", record.doc_id, record.mrn)
        )
        return
    found.records[record.doc_id] = record
    found.sidecars[record.doc_id] = sidecar_file
    if not pdf.is_file():
        found.problems.append(
            Problem("missing_file", _rel(config, pdf), "the sidecar's PDF is missing", record.doc_id, record.mrn)
        )
    elif sha256_file(pdf) != record.sha256:
        found.problems.append(
            Problem(
                "altered_file",
                _rel(config, pdf),
                "the PDF does not match the SHA-256 in its sidecar",
                record.doc_id,
                record.mrn,
            )
        )


def _placement_problem(record: IndexRecord, doc_id: str, pdf_rel: str, folder_mrn: str | None) -> str | None:
    if record.doc_id != doc_id:
        return f"the sidecar names document {record.doc_id} but its file name says {doc_id}"
    if record.path != pdf_rel:
        return f"the sidecar gives its path as {record.path}"
    if folder_mrn is None and record.status != "review":
        return f"status {record.status} in the review queue"
    if folder_mrn is not None and (record.status != "filed" or record.mrn != folder_mrn):
        return f"status {record.status}, MRN {record.mrn or '-'} in the folder of MRN {folder_mrn}"
    return None


def check_archive(config: Config) -> _Archive:
    """Re-hash every document and report what is missing, altered, orphaned or misplaced."""
    found = _Archive()
    for folder, mrn in _document_folders(config):
        names = sorted(p for p in folder.iterdir() if not p.name.startswith("."))  # dot-names: writes in progress
        for path in names:
            if path.suffix == ".json" and path.is_file():
                _check_sidecar(config, path, mrn, found)
            elif path.suffix != ".pdf" or not path.is_file():
                found.problems.append(
                    Problem("orphan_file", _rel(config, path), "not a document or a sidecar", mrn=mrn)
                )
            elif not path.with_suffix(".json").exists():
                found.problems.append(
                    Problem("orphan_file", _rel(config, path), "a PDF without a sidecar", doc_id_of(path), mrn)
                )
    found.problems += [Problem("orphan_file", _rel(config, p), "not a patient folder") for p in _stray_entries(config)]
    return found


def check_index(index: Index, found: _Archive, site: str | None = None) -> list[Problem]:
    """Documents the index lacks, has without the archive, or has with other metadata (of one site, if given)."""
    problems: list[Problem] = []
    seen: set[str] = set()
    if site is not None:
        seen = {doc_id for doc_id, record in found.records.items() if record.site != site}
    for stored in index.stored(site):
        seen.add(stored.doc_id)
        expected = found.records.get(stored.doc_id)
        if expected is None:
            if stored.doc_id not in found.unreadable:  # its sidecar is reported already; keep it searchable
                problems.append(
                    Problem("index_only", stored.path, "indexed but not in the archive", stored.doc_id, stored.mrn)
                )
            continue
        differ = [name for name in _COMPARED if getattr(stored, name) != getattr(expected, name)]
        if differ:
            problems.append(
                Problem(
                    "index_differs",
                    expected.path,
                    f"the index differs in {', '.join(differ)}",
                    stored.doc_id,
                    expected.mrn,
                )
            )
    for doc_id in sorted(found.records.keys() - seen):
        record = found.records[doc_id]
        problems.append(Problem("not_indexed", record.path, "archived but not in the index", doc_id, record.mrn))
    return problems


def check_remnants(config: Config, index: Index) -> list[Problem]:
    """Deleted documents whose text the index's files still hold (every delete removes it at once)."""
    count = index.remnants()
    if not count:
        return []
    detail = (
        f"{count} deleted document(s) still readable in the index files (text, names, MRNs); "
        "remove them with `medarchive verify --repair-index`"
    )
    return [Problem("index_remnant", _rel(config, config.index_dir), detail)]


def repair_index(index: Index, found: _Archive, problems: list[Problem]) -> int:
    """Make the index agree with the archive for the documents in ``problems``; return how many."""
    stale = {p.doc_id for p in problems if p.kind in ("not_indexed", "index_differs") and p.doc_id}
    gone = {p.doc_id for p in problems if p.kind == "index_only" and p.doc_id}
    if stale:
        index.add(record_from_sidecar(read_sidecar(found.sidecars[d])) for d in sorted(stale))
    if gone:
        index.delete(gone)
    return len(stale) + len(gone)


def check_page_images(config: Config, found: _Archive) -> list[Problem]:
    """Page images left behind by a document that was destroyed or moved (derived copies die with it)."""
    known = {record.sha256 for record in found.records.values()}
    return [
        Problem("orphan_image", _rel(config, path), "a page image of no archived document; delete it")
        for path in orphan_page_images(config, known)
    ]


def _is_private(path: Path) -> bool:
    info = path.lstat()
    return not info.st_mode & _PRIVATE_BITS and info.st_uid == os.geteuid()


def check_permissions(config: Config) -> list[Problem]:
    """Folders 0700 and files 0600, owned by this user, everywhere medarchive writes.

    The index matters most: Whoosh unpickles its table of contents, so whoever can
    write there can run code as this user.
    """
    problems = []
    tops = [config.archive_dir, config.review_dir, config.failed_dir, config.index_dir, audit_dir(config)]
    paths = [config.root] + [p for top in tops if top.exists() for p in _walk(top)]
    for path in paths:
        if not _is_private(path):
            mode = stat.filemode(path.lstat().st_mode)
            problems.append(
                Problem(
                    "insecure", _rel(config, path), f"mode {mode} or owner not private; fix with chmod go= (and chown)"
                )
            )
    return problems


def _walk(top: Path) -> Iterator[Path]:
    yield top
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            yield Path(folder) / name


def verify(config: Config, index: Index, *, repair: bool = False, site: str | None = None) -> VerifyReport:
    """Check the archive, the permissions and the index (one site's part of it, if given);
    with ``repair``, rewrite the index's disagreements."""
    found = check_archive(config)
    index_problems = check_index(index, found, site) + check_remnants(config, index)
    repaired = 0
    if repair and index_problems:
        repaired = repair_index(index, found, index_problems)
        index.expunge()
        index_problems = check_index(index, found, site) + check_remnants(config, index)
    problems = found.problems + check_page_images(config, found) + check_permissions(config) + index_problems
    return VerifyReport(len(found.records), problems, repaired)
