"""The sign-in link e-mail (lens/auth's own message), against its golden files.

To accept a deliberate change: LENS_UPDATE_GOLDEN=1 pytest tests/auth/test_sign_in_email.py,
then read the diff of tests/auth/golden before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

from lens.auth.service import MESSAGES

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LENS_UPDATE_GOLDEN") == "1"
SITE = "https://lens.example.org"
CONTEXT = {
    "link": f"{SITE}/auth/email/verify?token=abc",
    "minutes": 15,
    "unsubscribe_url": None,
    "site_url": SITE,
    "name": "Ada <Lovelace>",
}


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual)
        return
    assert path.exists(), f"no golden file {name}; run with LENS_UPDATE_GOLDEN=1"
    assert actual == path.read_text(), f"{name} differs from its golden file"


def test_sign_in_email_matches_golden() -> None:
    rendered = MESSAGES.email("sign_in_link", CONTEXT)
    check("sign_in_link.subject", rendered.subject + "\n")
    check("sign_in_link.txt", rendered.text)
    check("sign_in_link.html", rendered.html)
    assert CONTEXT["link"] in rendered.text and CONTEXT["link"] in rendered.html


def test_sign_in_discord_message_matches_golden() -> None:
    check("sign_in_link.discord", MESSAGES.discord("sign_in_link", CONTEXT) + "\n")
