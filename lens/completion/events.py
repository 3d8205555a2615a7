"""What completion publishes for the features above (the learner's message)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CertificateIssued:
    certificate_id: int
    user_id: int | None
    cohort_id: int
