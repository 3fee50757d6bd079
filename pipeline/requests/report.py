"""The requests report: counts by kind and outcome, turnaround, overdue; and the same as a small SVG (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

from pipeline.requests.records import KINDS, STATUSES, Request


@dataclass(frozen=True)
class RequestReport:
    """Requests received from ``date_from`` to ``date_to`` (inclusive), as of ``today``."""

    date_from: str
    date_to: str
    today: str
    total: int
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    median_days: float | None = None
    p90_days: float | None = None
    overdue: int = 0
    closed_late: int = 0


def _percentile(values: list[int], share: float) -> float | None:
    """The nearest-rank percentile (a turnaround some request really had)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered, mid = sorted(values), len(values) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def build_report(requests: Iterable[Request], date_from: date, date_to: date, today: date) -> RequestReport:
    chosen = [r for r in requests if date_from.isoformat() <= r.received <= date_to.isoformat()]
    by_kind = {kind: dict.fromkeys(STATUSES, 0) for kind in KINDS}
    for r in chosen:
        by_kind[r.kind][r.status] += 1
    turnaround = [days for r in chosen if (days := r.turnaround_days()) is not None]
    late = [r for r in chosen if r.closed_on and r.status != "withdrawn" and r.closed_on > r.due]
    return RequestReport(
        date_from=date_from.isoformat(),
        date_to=date_to.isoformat(),
        today=today.isoformat(),
        total=len(chosen),
        by_kind={k: v for k, v in by_kind.items() if any(v.values())},
        by_outcome=dict(Counter(r.status for r in chosen)),
        median_days=_median(turnaround),
        p90_days=_percentile(turnaround, 0.9),
        overdue=sum(r.overdue(today) for r in chosen),
        closed_late=len(late),
    )


_COLOURS = {
    "received": "#9aa5b1",
    "in_progress": "#4a90d9",
    "fulfilled": "#2e8b57",
    "denied": "#c0392b",
    "withdrawn": "#b8860b",
}
_BAR_H, _GAP, _LABEL_W, _BAR_W, _TOP = 18, 8, 90, 320, 28


def chart_svg(report: RequestReport) -> str:
    """Horizontal bars, one per requester kind, split by outcome; a legend on top. No script, no styles."""
    kinds = list(report.by_kind)
    most = max((sum(c.values()) for c in report.by_kind.values()), default=0) or 1
    height = _TOP + len(kinds) * (_BAR_H + _GAP) + 10
    width = _LABEL_W + _BAR_W + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Requests received {escape(report.date_from)} to {escape(report.date_to)} by kind and outcome">'
    ]
    x: float = _LABEL_W
    for status in STATUSES:
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{_COLOURS[status]}"/>')
        parts.append(f'<text x="{x + 14}" y="13" font-size="10" font-family="sans-serif">{status}</text>')
        x += 14 + 7 * len(status) + 8
    for row, kind in enumerate(kinds):
        y = _TOP + row * (_BAR_H + _GAP)
        counts = report.by_kind[kind]
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 13}" font-size="11" font-family="sans-serif" '
            f'text-anchor="end">{escape(kind)}</text>'
        )
        x = float(_LABEL_W)
        for status in STATUSES:
            if counts[status]:
                w = counts[status] * _BAR_W / most
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" fill="{_COLOURS[status]}">'
                    f"<title>{escape(kind)}: {counts[status]} {status}</title></rect>"
                )
                x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 13}" font-size="11" font-family="sans-serif">{sum(counts.values())}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
