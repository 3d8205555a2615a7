"""What happens in a cohort that features above care about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignupConfirmed:
    """Someone finished enrolling (the wizard's last step): they are enrolled."""

    signup_id: int
    user_id: int
    cohort_id: int
