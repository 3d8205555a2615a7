"""Rendering a kind for one person: e-mail (subject, text, HTML) and a Discord message.

Templates live in templates/<language>/<kind>.{subject,txt,html,discord}; the context is
plain strings and lists, already in the recipient's time zone, so a rendering depends
on nothing but its context (which is what the golden-file tests pin down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lens.notifications.kinds import get_kind

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("en",)
DISCORD_LIMIT = 2000

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def discord_escape(text: str) -> str:
    """A name shown as typed in Discord, not as markdown (no links, no formatting)."""
    for char in "\\*_~`|>[]()<#@":
        text = text.replace(char, "\\" + char)
    return text


_env.filters["discord"] = discord_escape


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def local_time(moment: datetime, zone: str) -> str:
    """'Tuesday 2 March 2027, 18:00 (Europe/Berlin)' in the reader's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone})"


def _template(language: str, kind: str, part: str) -> Any:
    language = language if language in LANGUAGES else "en"
    return _env.get_template(f"{language}/{kind}.{part}")


def render_email(kind: str, context: dict[str, Any], *, language: str = "en") -> RenderedEmail:
    get_kind(kind)
    subject = _template(language, kind, "subject").render(context).strip()
    text = _template(language, kind, "txt").render(context)
    html = _template(language, kind, "html").render(context)
    return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)


def render_discord(kind: str, context: dict[str, Any], *, language: str = "en") -> str:
    get_kind(kind)
    message: str = _template(language, kind, "discord").render(context).strip()
    if len(message) > DISCORD_LIMIT:
        message = message[: DISCORD_LIMIT - 1] + "…"
    return message
