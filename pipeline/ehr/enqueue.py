"""Queue the EHR messages a filing calls for: the one call the filing paths make.

``enqueue_filed`` is idempotent: it compares each filed document with the last version
queued for each destination and adds only what is missing. Calling it again after a
crash (or for an input met again as a duplicate) adds nothing that is already queued,
and a document moved to another patient or retyped since gets a cancel of the old
version and a create of the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from indexers.base import Index
from pipeline.archive.sidecar import Sidecar, read_sidecar
from pipeline.archive.store import find_sidecar, sidecar_path
from pipeline.core.config import Config
from pipeline.ehr.outbox import Message, NewMessage, Outbox

log = logging.getLogger(__name__)

SidecarLike = Sidecar | Mapping | str


@dataclass(frozen=True)
class Filing:
    """What the EHR is told about one filed document (no names: the MRN identifies the patient)."""

    doc_id: str
    mrn: str
    doc_type: str
    doc_date: str | None
    path: str
    sha256: str
    pages: int
    merged_from: tuple[str, ...] = ()

    @classmethod
    def of(cls, sidecar: Sidecar) -> Filing:
        merged = tuple(
            e.moved_from.mrn for e in sidecar.history if e.action == "merged" and e.moved_from and e.moved_from.mrn
        )
        return cls(
            sidecar.doc_id,
            sidecar.mrn or "",
            sidecar.doc_type,
            sidecar.doc_date,
            sidecar.path,
            sidecar.sha256,
            sidecar.pages,
            merged,
        )

    def payload(self, **more) -> dict:
        return {
            "mrn": self.mrn,
            "doc_type": self.doc_type,
            "doc_date": self.doc_date,
            "path": self.path,
            "sha256": self.sha256,
            "pages": self.pages,
            **more,
        }


def plan(destination: str, filing: Filing, latest: Message | None) -> list[NewMessage]:
    """The messages that bring ``destination`` up to ``filing``, given the last create queued there."""
    if latest is None:
        return [NewMessage(destination, filing.doc_id, "create", 1, filing.mrn, filing.payload(replaces=None))]
    # A move by an ADT merge is no correction: the EHR merged the same patients on the same A40.
    same_patient = latest.mrn == filing.mrn or latest.mrn in filing.merged_from
    if same_patient and latest.payload.get("doc_type") == filing.doc_type:
        return []
    version = latest.version + 1
    create = NewMessage(
        destination,
        filing.doc_id,
        "create",
        version,
        filing.mrn,
        filing.payload(replaces=latest.version if latest.state != "dead" else None),
    )
    if latest.state == "dead":  # never reached the receiver: nothing there to cancel
        return [create]
    cancel = NewMessage(
        destination, filing.doc_id, "cancel", latest.version, latest.mrn, {**latest.payload, "replaced_by": version}
    )
    return [cancel, create]


def _as_sidecar(config: Config, item: SidecarLike, index: Index | None) -> Sidecar:
    if isinstance(item, Sidecar):
        return item
    if isinstance(item, str):
        return find_sidecar(config, item, index)
    if "source" not in item:  # a row that names a document by its path (a run's Outcome.documents)
        return read_sidecar(sidecar_path(config.root / item["path"]))
    return Sidecar.from_json(item)


def enqueue_filed(
    config: Config, items: Iterable[SidecarLike], *, index: Index | None = None, outbox: Outbox | None = None
) -> int:
    """Queue one message per destination for each filed document in ``items``: sidecars (typed
    or JSON), rows with the document's ``path`` (a run's ``Outcome.documents``) or doc_ids
    (found through ``index`` when given, else by a scan of the archive). Documents in review
    are skipped. Returns the number of messages added.

    Call it once the filing is durable (archive written, index committed); calling it
    again for the same documents is harmless.
    """
    if not config.ehr.enabled:
        return 0
    wanted = (i for i in items if not isinstance(i, Mapping) or i.get("status", "filed") == "filed")
    sidecars = (_as_sidecar(config, i, index) for i in wanted)
    filings = [Filing.of(s) for s in sidecars if s.status == "filed" and s.mrn]
    if not filings:
        return 0
    own = outbox is None
    outbox = outbox or Outbox.for_config(config)
    try:
        added = 0
        with outbox.transaction() as db:
            for filing in filings:
                for destination in config.ehr.destinations:
                    latest = outbox.latest_create(destination.name, filing.doc_id, db)
                    planned = plan(destination.name, filing, latest)
                    if planned and latest is not None and latest.state == "dead":
                        outbox.mark_superseded(db, latest.id, planned[-1].version)
                    added += outbox.add(db, planned)
    finally:
        if own:
            outbox.close()
    if added:
        log.info("ehr: queued %d message(s) for %d document(s)", added, len(filings))
    return added
