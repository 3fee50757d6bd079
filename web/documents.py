"""Documents by id: the sidecar found through the index, the archived PDF, the page a hit is on.

A request only ever names a document id, checked against a strict pattern; the
files are found where the index says (never by a scan of the archive, which an
unknown id would make walk every patient folder), never from the request.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import abort, g

from pipeline.archive.sidecar import Sidecar, read_sidecar
from pipeline.archive.store import find_sidecar, sidecar_path
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError
from web.context import services

DOC_ID = re.compile(r"[0-9a-f]{16}-[0-9]{1,6}")
_MARKED = re.compile(r"\*\*(.+?)\*\*")


def load(doc_id: str) -> Sidecar:
    """The sidecar of a document, or 404 for a malformed or unknown id."""
    if not DOC_ID.fullmatch(doc_id):
        abort(404)
    try:
        return find_sidecar(services().config, doc_id, services().index, scan=False)
    except (ArchiveError, OSError, ValueError, KeyError, TypeError):
        abort(404)


def read_at(config: Config, relative: str) -> Sidecar | None:
    """The sidecar beside an archived PDF given by its index path, if it is still there."""
    pdf = archived(config, relative)
    if pdf is None:
        return None
    try:
        return read_sidecar(sidecar_path(pdf))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def archived(config: Config, relative: str) -> Path | None:
    """An archive or review-queue PDF under the data root, or None for anything else."""
    path = (config.root / relative).resolve()
    inside = any(path.is_relative_to(folder) for folder in _private_folders(config))
    return path if inside and path.suffix == ".pdf" and path.is_file() else None


def _private_folders(config: Config) -> tuple[Path, Path]:
    # Once per request, not per hit: each resolve costs a system call per path
    # component, and a page of search hits checked them twenty times over.
    if "private_folders" not in g:
        g.private_folders = (config.archive_dir.resolve(), config.review_dir.resolve())
    return g.private_folders


def pdf_of(sidecar: Sidecar) -> Path:
    pdf = archived(services().config, sidecar.path)
    if pdf is None:
        abort(404)
    return pdf


def mrns_of(sidecar: Sidecar) -> list[str | None]:
    """The MRNs a view of the document is audited under: a review-queue document's are every one read from it."""
    candidates = sidecar.identifiers.mrn_candidates
    return [sidecar.mrn, sidecar.suggested_mrn, *(c.value for c in candidates), *sidecar.candidate_mrns]


def hit_page(sidecar: Sidecar | None, snippet: str) -> int | None:
    """The first page whose text holds a word the snippet highlights."""
    if sidecar is None:
        return None
    words = [w.lower() for w in _MARKED.findall(snippet)]
    for page in sidecar.page_texts:
        if any(word in page.text.lower() for word in words):
            return page.page
    return None
