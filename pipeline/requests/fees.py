"""What a request costs, by its rule (pure; amounts in cents, so sums never drift)."""

from __future__ import annotations

import math

from pipeline.core.config import FeeRule
from pipeline.core.errors import MedarchiveError

# Far above any copying cost; above it an amount is a typing slip (and no longer fits the store's integer).
_MOST = 1_000_000


class FeeError(MedarchiveError):
    """A fee cannot be set as asked."""


def _cents(amount: float) -> int:
    return round(amount * 100)


def parse_cost(text: str) -> float | None:
    """A cost as a clerk types it in a form ("42.10", "$42.10"); None when left empty."""
    cleaned = text.strip().lstrip("$").replace(",", "")
    if not cleaned:
        return None
    try:
        return float(cleaned)
    except ValueError:
        raise FeeError(
            f"{text.strip()[:20]!r} is not an amount to charge; give the cost in dollars, e.g. 42.10"
        ) from None


def fee_cents(rule: FeeRule, pages: int, actual_cost: float | None = None) -> tuple[int, str]:
    """The fee and how it was reached, for the cover sheet and the request."""
    if rule.method == "actual_cost":
        if actual_cost is None:
            raise FeeError("this kind of request is charged at actual cost; give the cost with --fee AMOUNT")
        if actual_cost < 0:
            raise FeeError("a fee cannot be negative")
        if not math.isfinite(actual_cost) or actual_cost > _MOST:
            raise FeeError(f"{actual_cost!r} is not an amount to charge; give the cost in dollars, e.g. 42.10")
        return _cents(actual_cost), "actual cost"
    if actual_cost is not None:
        raise FeeError(f"the fee of this kind of request is set by its rule ({rule.method}); leave out --fee")
    if rule.method == "none":
        return 0, "no charge"
    if rule.method == "flat":
        return _cents(rule.amount), "flat fee"
    total = _cents(rule.base) + pages * _cents(rule.amount)
    note = f"{pages} page(s) at {rule.amount:.2f}" + (f" + {rule.base:.2f}" if rule.base else "")
    if rule.cap is not None and total > _cents(rule.cap):
        return _cents(rule.cap), note + f", capped at {rule.cap:.2f}"
    return total, note
