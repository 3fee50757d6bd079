"""Open one input in a worker: wrap an image, vet the PDF, repair it when qpdf had to.

Parsing a hostile PDF is the riskiest thing the pipeline does (C libraries, deep
recursion, huge allocations), so it runs in a worker process like the page work: a
crash or a hang there takes a worker, never the coordinator that owns the archive.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.config import IntakeSettings
from pipeline.core.fsutil import sha256_file
from pipeline.intake.images import image_to_pdf, is_image
from pipeline.intake.vet import Intake, inspect_pdf, repaired_copy
from pipeline.pages.worker import crash_if_asked


@dataclass(frozen=True)
class OpenTask:
    """One input to open; ``workdir`` is the coordinator's private folder for its copies."""

    path: Path
    name: str
    workdir: Path
    settings: IntakeSettings
    dpi: int


@dataclass(frozen=True)
class Opened:
    """A vetted input and the PDF its pages are read from (a repaired or wrapped copy, or itself)."""

    intake: Intake
    render_path: Path


def open_input(task: OpenTask) -> Opened:
    """Vet ``task``'s input; raise IntakeError with the reason it cannot be taken."""
    crash_if_asked(task.name)
    if is_image(task.path):
        wrapped = task.workdir / "image.pdf"
        image_to_pdf(task.path, wrapped, task.settings)
        intake = inspect_pdf(wrapped, task.settings, task.dpi)
        # Keyed by the image's own bytes, so the same scan dropped twice is a duplicate.
        intake = dataclasses.replace(intake, sha256=sha256_file(task.path))
    else:
        intake = inspect_pdf(task.path, task.settings, task.dpi)
    if not intake.warnings:
        return Opened(intake, intake.path)
    repaired = task.workdir / "repaired.pdf"
    repaired_copy(intake.path, repaired)
    return Opened(intake, repaired)
