"""Failures of the model vendors that a person has to fix, told apart from the rest."""

from __future__ import annotations

import re

from lens.errors import IntegrationRejected

# Anything shaped like a vendor key (OpenAI sk-…, Anthropic sk-ant-…, Google AIza…, SendGrid
# SG.…): vendors quote part of a refused key in their message; it never goes further.
_KEYS = re.compile(r"\b(?:sk-[\w*.-]{3,}|AIza[\w*-]{8,}|SG\.[\w*.-]{8,})")


class ProviderAccountProblem(IntegrationRejected):
    """The vendor refused Lens's account rather than this request: a wrong or revoked key,
    no permission, or quota and billing that need a person (OpenAI's 429
    `insufficient_quota`, Anthropic's `billing_error`). Retrying does not help; an admin
    has to act. The message says what the vendor said, without key material."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


def redact(text: str) -> str:
    return _KEYS.sub("[key]", text)
