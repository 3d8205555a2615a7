"""Rendering a kind for one person: e-mail (subject, text, HTML) and a Discord message.

Templates live in templates/<language>/<kind>.{subject,txt,html,discord}, with the
shared parts of lens/web/messages; see there for how a rendering depends on its
context only (which is what the golden-file tests pin down).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lens.notifications.kinds import get_kind
from lens.web.messages import MessageTemplates, RenderedEmail

_templates = MessageTemplates(Path(__file__).parent / "templates")


def render_email(kind: str, context: dict[str, Any], *, language: str = "en") -> RenderedEmail:
    get_kind(kind)
    return _templates.email(kind, context, language=language)


def render_discord(kind: str, context: dict[str, Any], *, language: str = "en") -> str:
    get_kind(kind)
    return _templates.discord(kind, context, language=language)
