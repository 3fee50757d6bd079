"""A box's life: assign documents to it, close it (with its manifest), ship, recall, destroy.

The sidecars say which documents a box holds (read here by one walk of the archive); the
box store says where the box is. Every action is an audit entry; a destruction is also
written to the chained destruction log, beside the retention purges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.archive.audit import AuditLog
from pipeline.archive.sidecar import PaperRef, Sidecar, write_sidecar
from pipeline.archive.store import find_sidecar, iter_failed, iter_sidecars, sidecar_path
from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import atomic_write_bytes
from pipeline.paper.manifest import manifest_pdf
from pipeline.paper.rules import BoxedDocument, FailedInput, State, close_refusal, destroy_refusal, last_scan
from pipeline.paper.store import Box, BoxEvent, BoxStore
from pipeline.records.retention import destruction_log

UNKNOWN = "box unknown"


class BoxError(MedarchiveError):
    """A box action that cannot be done (the message says why and what to do)."""


@dataclass(frozen=True)
class BoxView:
    box: Box
    documents: tuple[BoxedDocument, ...]
    failed: tuple[FailedInput, ...] = ()
    events: tuple[BoxEvent, ...] = ()

    @property
    def pages(self) -> int:
        return sum(d.pages for d in self.documents)

    @property
    def last_scan(self) -> date | None:
        return last_scan(self.documents)


def _boxed(sidecar: Sidecar) -> BoxedDocument:
    return BoxedDocument(sidecar.doc_id, sidecar.status, sidecar.mrn, sidecar.pages, sidecar.since or now_utc())


def contents(config: Config) -> dict[str | None, list[BoxedDocument]]:
    """Every document with a paper record, by box (None: a label sheet was scanned but not read)."""
    found: dict[str | None, list[BoxedDocument]] = defaultdict(list)
    for sidecar in iter_sidecars(config):
        if sidecar.paper is not None:
            found[sidecar.paper.box].append(_boxed(sidecar))
    return found


def _failed(config: Config, box: str) -> list[FailedInput]:
    return [FailedInput(f.get("file", "?"), f.get("reason", "")) for f in iter_failed(config) if f.get("box") == box]


def overview(config: Config) -> tuple[list[BoxView], list[BoxedDocument]]:
    """Every box (those only the sidecars know are open), and the documents whose box is unknown."""
    by_box = contents(config)
    with BoxStore.for_config(config) as store:
        known = {b.box: b for b in store.all()}
    names = sorted(set(known) | {b for b in by_box if b is not None})
    views = [BoxView(known.get(name, Box(name)), tuple(by_box.get(name, ()))) for name in names]
    return views, by_box.get(None, [])


def view(config: Config, box: str) -> BoxView:
    _check_name(config, box)
    with BoxStore.for_config(config) as store:
        stored, events = store.get(box), store.events(box)
    documents = contents(config).get(box, [])
    if stored is None and not documents:
        raise BoxError(f"no box {box}: no document records it and it was never assigned")
    return BoxView(stored or Box(box), tuple(documents), tuple(_failed(config, box)), tuple(events))


def _check_name(config: Config, box: str) -> None:
    if not config.boxes.is_box(box):
        raise BoxError(f"{box!r} is not a box label (boxes.label_pattern is {config.boxes.label_pattern!r})")


def _state(config: Config, box: str) -> State:
    return _state_of(config, box).state


def assign(config: Config, box: str, doc_ids: Iterable[str], *, user: str) -> list[Sidecar]:
    """Record that the paper of these documents is in ``box`` (which must be open)."""
    _check_name(config, box)
    state = _state(config, box)
    if state != "open":
        raise BoxError(f"box {box} is {state}; documents go only into an open box")
    sidecars = [find_sidecar(config, doc_id) for doc_id in doc_ids]
    _check_unsealed(config, box, sidecars)
    written = []
    for sidecar in sidecars:
        moved = replace(sidecar, paper=PaperRef(box, "assigned", now_utc(), user))
        write_sidecar(sidecar_path(config.root / sidecar.path), moved)
        written.append(moved)
    _record(
        config,
        box,
        "open",
        user=user,
        action="box.assign",
        detail=", ".join(s.doc_id for s in sidecars),
        documents=sidecars,
        audited={"from": sorted({s.paper.box or UNKNOWN for s in sidecars if s.paper})},
    )
    return written


def _check_unsealed(config: Config, box: str, sidecars: Iterable[Sidecar]) -> None:
    # A closed box's manifest lists the paper, a shipped one holds it off site, a destroyed one no
    # longer holds it: recording it elsewhere would make the archive lie about where the paper is.
    for sidecar in sidecars:
        held = sidecar.paper.box if sidecar.paper else None
        if held is None or held == box:
            continue
        state = _state(config, held)
        if state in ("closed", "shipped", "destroyed"):
            raise BoxError(
                f"the paper of document {sidecar.doc_id} is in box {held}, which is {state}; "
                "only paper in an open or recalled box can be moved to another box (nothing was recorded)"
            )


def close(config: Config, box: str, *, user: str) -> Path:
    """Close the box when nothing of it waits in review or failed; write its manifest PDF; return its path."""
    current = view(config, box)
    refusal = close_refusal(current.box.state, current.documents, current.failed)
    if refusal:
        raise BoxError(f"box {box} cannot be closed: {refusal}")
    closed_at = now_utc()
    path = manifest_path(config, box)
    atomic_write_bytes(path, manifest_pdf(box, current.documents, closed_at=closed_at, closed_by=user))
    _record(
        config,
        box,
        "closed",
        user=user,
        action="box.close",
        detail=f"{len(current.documents)} document(s)",
        documents=current.documents,
        audited={"pages": current.pages},
    )
    return path


def manifest_path(config: Config, box: str) -> Path:
    return config.root / "boxes" / f"{box}-manifest.pdf"


def ship(config: Config, box: str, *, vendor: str, user: str) -> Box:
    _check_name(config, box)
    state = _state(config, box)
    if state not in ("closed", "recalled"):
        raise BoxError(f"box {box} is {state}; close it before it is shipped")
    if not vendor.strip():
        raise BoxError("name the storage vendor (--to)")
    vendor = vendor.strip()
    return _record(
        config, box, "shipped", user=user, action="box.ship", detail=vendor, vendor=vendor, audited={"vendor": vendor}
    )


def recall(config: Config, box: str, *, reason: str, requested_by: str, user: str) -> Box:
    _check_name(config, box)
    state = _state(config, box)
    if state != "shipped":
        raise BoxError(f"box {box} is {state}, not at a storage vendor; only a shipped box is recalled")
    if not reason.strip() or not requested_by.strip():
        raise BoxError("a recall needs who asked for it (--requested-by) and why (--reason)")
    detail = f"requested by {requested_by.strip()}: {reason.strip()}"
    return _record(
        config,
        box,
        "recalled",
        user=user,
        action="box.recall",
        detail=detail,
        reason=reason.strip(),
        audited={"requested_by": requested_by.strip()},
    )


def destroy(config: Config, box: str, *, user: str, today: date) -> Box:
    """Record the box's paper as destroyed: after the keep period, never under a legal hold."""
    current = view(config, box)
    refusal = destroy_refusal(
        current.box.state, current.documents, config.retention.legal_holds, config.boxes.keep_paper_days, today
    )
    if refusal:
        raise BoxError(f"box {box} may not be destroyed: {refusal}")
    destruction_log(config).append(
        {
            "at": now_utc(),
            "user": user,
            "action": "paper destroyed",
            "box": box,
            "vendor": current.box.vendor,
            "documents": [d.doc_id for d in current.documents],
            "mrns": sorted({d.mrn for d in current.documents if d.mrn}),
            "pages": current.pages,
        }
    )
    return _record(
        config,
        box,
        "destroyed",
        user=user,
        action="box.destroy",
        detail=f"{current.pages} page(s)",
        documents=current.documents,
        audited={"pages": current.pages},
    )


def _record(
    config: Config,
    box: str,
    state: State,
    *,
    user: str,
    action: str,
    detail: str | None = None,
    vendor: str | None = None,
    documents: Iterable[BoxedDocument | Sidecar] = (),
    reason: str | None = None,
    audited: dict[str, Any] | None = None,
) -> Box:
    """Move the box in its store and write the audit entry of the same action."""
    with BoxStore.for_config(config) as store:
        done = store.change(box, state, user=user, action=action, detail=detail, vendor=vendor)
    documents = list(documents)
    AuditLog.for_config(config).record(
        action,
        user=user,
        doc_ids=[d.doc_id for d in documents],
        mrns=[d.mrn for d in documents],
        reason=reason,
        details={"box": box, **(audited or {})},
    )
    return done


def paper_line(config: Config, sidecar: Sidecar) -> str | None:
    """Where the document's paper is, in words: "paper original in box BOX-000123, at Vendor X since 2026-12-01"."""
    if sidecar.paper is None:
        return None
    if sidecar.paper.box is None:
        return f"paper original: {UNKNOWN} (its box label could not be read; `medarchive boxes assign`)"
    box = sidecar.paper.box
    state = _state_of(config, box)
    where = {
        "open": "the box is open (still being filled)",
        "closed": "the box is closed, on site",
        "recalled": "the box is recalled from storage",
        "destroyed": "the paper was destroyed",
    }
    if state.state == "shipped":
        return f"paper original in box {box}, at {state.vendor} since {(state.since or '')[:10]}"
    return f"paper original in box {box} ({where[state.state]})"


def _state_of(config: Config, box: str) -> Box:
    with BoxStore.for_config(config) as store:
        return store.get(box) or Box(box)
