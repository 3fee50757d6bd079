"""Due dates: calendar or business days from receipt, and the one extension a rule may allow (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from pipeline.core.config import RequestRule
from pipeline.core.errors import MedarchiveError


class DueDateError(MedarchiveError):
    """A due date cannot be set or moved as asked."""


def add_days(start: date, days: int, *, business: bool, holidays: Iterable[date] = ()) -> date:
    """``days`` after ``start``: calendar days, or weekdays that are not holidays."""
    if not business:
        return start + timedelta(days=days)
    off = set(holidays)
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            left -= 1
    return day


def due_date(received: date, rule: RequestRule, holidays: Iterable[date] = ()) -> date:
    return add_days(received, rule.days, business=rule.business_days, holidays=holidays)


def check_received(received: date, today: date) -> None:
    if received > today:
        raise DueDateError(f"the request cannot have been received on {received}, after today ({today})")


def check_given_due(due: date, received: date, today: date) -> None:
    """A due date the clerk sets (a court's return date) must still be ahead."""
    if due < today:
        raise DueDateError(
            f"the due date {due} is in the past (today is {today}); give the date the answer is still due by"
        )
    if due < received:
        raise DueDateError(f"the due date {due} is before the request was received ({received})")


def extended_due(
    due: date, rule: RequestRule, *, already: bool, reason: str, told: date | None, today: date, holidays=()
) -> date:
    """The due date after the rule's one extension; each refusal says what is missing."""
    if rule.extension_days <= 0:
        raise DueDateError("the rule for this kind of request allows no extension")
    if already:
        raise DueDateError("this request was already extended once; a rule allows one extension")
    if not reason.strip():
        raise DueDateError("an extension needs the reason for the delay (--reason)")
    if told is None:
        raise DueDateError("an extension needs the date the requester was told of it in writing (--told)")
    if told > today:
        raise DueDateError(f"the requester cannot have been told on {told}, after today ({today})")
    if today > due:
        raise DueDateError(f"the request was due on {due}; an extension must be given before the due date passes")
    return add_days(due, rule.extension_days, business=rule.business_days, holidays=holidays)
