"""The archive's history of a few MRNs: what their filed documents say of the patient.

The filing decision may take documents already filed under an MRN as a witness (their
name or date of birth agree with the new document's), and as a warning (an MRN one
misread digit away is already a patient's). This is the edge that reads it, from the
sidecars under ``archive/<MRN>/`` — the archive is the truth, and a folder listing per
MRN costs nothing next to one OCR page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.archive.sidecar import read_sidecar
from pipeline.core.config import Config
from pipeline.core.models import FiledPatient

log = logging.getLogger(__name__)

# An MRN with a long history says what it needs to in its newest documents.
MAX_DOCUMENTS = 25
_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _patient(mrn: str, folder: Path) -> FiledPatient | None:
    try:
        sidecars = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    names: dict[str, None] = {}
    dobs: dict[str, None] = {}
    read = 0
    for path in sidecars[:MAX_DOCUMENTS]:
        try:
            sidecar = read_sidecar(path)
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("archive history: a sidecar under MRN %s cannot be read; left out", mrn)
            continue
        if sidecar.status != "filed" or sidecar.mrn != mrn:
            continue
        read += 1
        if sidecar.patient_name:
            names.setdefault(sidecar.patient_name)
        if sidecar.dob:
            dobs.setdefault(sidecar.dob)
    return FiledPatient(mrn, tuple(names), tuple(dobs), read) if read else None


def filed_patients(config: Config, mrns: Iterable[str]) -> dict[str, FiledPatient]:
    """What the filed documents of each of ``mrns`` say of its patient; MRNs with none are left out."""
    found = {}
    for mrn in set(mrns):
        folder = config.archive_dir / mrn
        if _FOLDER.match(mrn) and folder.is_dir() and (patient := _patient(mrn, folder)) is not None:
            found[mrn] = patient
    return found
