"""What happens in a cohort that features above care about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignupConfirmed:
    """Someone finished enrolling (the wizard's last step): they are enrolled."""

    signup_id: int
    user_id: int
    cohort_id: int


@dataclass(frozen=True)
class CohortFinished:
    """An admin marked a running cohort finished: its meetings are over."""

    cohort_id: int
