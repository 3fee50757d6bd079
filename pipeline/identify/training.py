"""Training the document-type model from the archive, on demand or on the daemon's schedule.

The examples are the filed documents whose type a clerk, a barcode or a printed title
gave (type_source.trusted_type). Their hash says whether anything changed since the
model was trained: the nightly retrain is skipped when nothing did.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.archive.audit import AuditLog, os_user
from pipeline.archive.sidecar import read_sidecar
from pipeline.archive.store import iter_sidecar_paths
from pipeline.core.clock import last_scheduled, now_utc
from pipeline.core.config import Config
from pipeline.core.errors import ArchiveError, MedarchiveError
from pipeline.core.fsutil import atomic_write_json, read_json
from pipeline.identify import model_store
from pipeline.identify.type_source import trusted_type

if TYPE_CHECKING:  # scikit-learn is imported only when examples are read or a model trained
    from pipeline.identify.learned import Example, Figures

log = logging.getLogger("medarchive.classifier")


class NotEnoughExamples(MedarchiveError):
    """Too few labelled documents for a model: the rules alone decide (cold start)."""


@dataclass(frozen=True)
class LabelledSet:
    examples: list[Example]  # in doc_id order
    digest: str

    @property
    def per_type(self) -> dict[str, int]:
        return dict(sorted(Counter(e.doc_type for e in self.examples).items()))


def labelled_set(config: Config) -> LabelledSet:
    """Every trusted filed document of a configured type, and the hash of them all."""
    from pipeline.identify.learned import Example

    examples = []
    for path in iter_sidecar_paths(config):
        try:
            sidecar = read_sidecar(path)
        except FileNotFoundError:
            continue  # moved by a clerk or the daemon since the folder was listed
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"unreadable sidecar {path.relative_to(config.root)}: {exc}") from None
        doc_type = trusted_type(sidecar)
        if doc_type in config.classification.types:
            examples.append(Example(sidecar.doc_id, doc_type, tuple(p.text for p in sidecar.page_texts)))
    examples.sort(key=lambda e: e.doc_id)
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.doc_id, e.doc_type, e.texts]).encode("utf-8"))
    return LabelledSet(examples, digest.hexdigest())


def _check_enough(config: Config, labelled: LabelledSet) -> None:
    from pipeline.identify.learned import usable

    settings = config.classification
    kept, _ = usable(labelled.examples, settings.min_examples_per_type)
    types = {e.doc_type for e in kept}
    if len(kept) < settings.min_examples or len(types) < 2:
        raise NotEnoughExamples(
            f"{len(labelled.examples)} labelled document(s) ({len(kept)} of types with at least "
            f"{settings.min_examples_per_type}); a model needs classification.min_examples = {settings.min_examples} "
            "in at least two types. Until then the rules alone decide"
        )


def train_and_store(config: Config, labelled: LabelledSet | None = None) -> Figures:
    """Train on the archive's labelled documents and write the model file; return its figures."""
    from pipeline.identify.learned import capped, train

    labelled = labelled or labelled_set(config)
    _check_enough(config, labelled)
    settings = config.classification
    model, figures = train(
        capped(labelled.examples, settings.max_examples), min_per_type=settings.min_examples_per_type
    )
    try:
        model_store.save(config, model, figures, labelled.digest)
    except OSError as exc:
        raise ArchiveError(
            f"cannot write the model file {model_store.model_path(config)}: {exc.strerror or exc}"
        ) from None
    log.info(
        "document-type model trained on %d documents in %.1f s: accuracy %.3f, macro-F1 %.3f",
        figures.examples,
        figures.seconds,
        figures.accuracy,
        figures.macro_f1,
    )
    return figures


def _state_path(config: Config) -> Path:
    return model_store.model_dir(config) / "schedule.json"


def _last_due(config: Config, now: datetime) -> datetime:
    """The latest scheduled retrain time at or before ``now`` (local time)."""
    return last_scheduled(config.classification.retrain_at or "00:00", now)


def _last_check(config: Config) -> datetime | None:
    try:
        return datetime.fromisoformat(read_json(_state_path(config))["checked"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def maybe_retrain(config: Config, now: datetime) -> str | None:
    """Retrain when a scheduled time has passed since the last check and the labelled set
    changed; a line for the log when something was done or went wrong, else None.

    ``now`` is the local wall-clock time (naive, as ``datetime.now()``). Cheap when not due:
    one small file read.
    """
    settings = config.classification
    if settings.retrain_at is None or not settings.learned:
        return None
    now = now.replace(tzinfo=None)
    last = _last_check(config)
    if last is not None and last >= _last_due(config, now):
        return None
    atomic_write_json(_state_path(config), {"checked": now.isoformat(timespec="seconds"), "at": now_utc()})
    try:
        labelled = labelled_set(config)
        stored = model_store.current(config)
        if stored is not None and stored.training_hash == labelled.digest:
            log.info(
                "document-type model not retrained: the %d labelled documents have not changed", len(labelled.examples)
            )
            return None
        figures = train_and_store(config, labelled)
        AuditLog.for_config(config).record(
            "classifier.train", user=os_user(), details={"examples": figures.examples, "scheduled": True}
        )
    except NotEnoughExamples as exc:
        log.info("document-type model not trained: %s", exc)
        return None
    except (MedarchiveError, OSError, ValueError, MemoryError) as exc:
        return f"document-type model retraining failed ({exc}); the previous model stays in use"
    return (
        f"document-type model retrained on {figures.examples} documents: "
        f"accuracy {figures.accuracy:.3f}, macro-F1 {figures.macro_f1:.3f}"
    )
