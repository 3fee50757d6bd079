"""Whether a merge or unmerge from the registration feed is applied at once or waits for a clerk.

Pure: the policy, the two patients as the patient index knows them and the patient as
the message describes them in; ``None`` (apply it) or the reason it is held out.
Registration data is typed, not read by OCR, so names and birth dates must agree
exactly (after the roster's normalisation: capitals, letters only, the first given name).
Reasons go into acknowledgements, logs and the audit log: MRNs only, never names.
"""

from __future__ import annotations

from pipeline.ehr.listener_settings import MergePolicy
from pipeline.identify.patients import Patient
from pipeline.identify.roster import _first_key, _last_key

_REVIEW_ALL = "hl7_listener.merge_policy is review: every merge waits for a clerk"


def _identity(patient: Patient) -> tuple[str, str, str]:
    return _last_key(patient.family), _first_key(patient.given), patient.dob


def merge_hold_reason(
    policy: MergePolicy,
    prior: str,
    survivor: str,
    known_prior: Patient | None,
    known_survivor: Patient | None,
    described: Patient | None,
) -> str | None:
    """Why an A40 retiring ``prior`` into ``survivor`` must wait for a clerk; None to apply it."""
    if policy == "trust":
        return None
    if policy == "review":
        return _REVIEW_ALL
    if known_survivor is None:
        return f"the surviving MRN {survivor} is not in the patient index"
    if known_prior is None:
        return f"the retired MRN {prior} is not in the patient index"
    if described is None:
        return "the message has no name and date of birth (PID-5, PID-7) to check the merge against"
    if _identity(known_survivor) != _identity(described):
        return f"the name or date of birth of MRN {survivor} in the patient index differs from the message"
    if _identity(known_prior) != _identity(described):
        return f"the name or date of birth of the retired MRN {prior} in the patient index differs from the message"
    return None


def unmerge_hold_reason(policy: MergePolicy) -> str | None:
    """Why an A37 must wait for a clerk; None to apply it.

    Undoing a merge only restores what the archive knew before, so ``verified`` applies it.
    """
    return _REVIEW_ALL.replace("every merge", "every merge and unmerge") if policy == "review" else None
