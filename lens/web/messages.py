"""Messages to people (e-mail: subject, text and HTML; Discord: one message), rendered
from a feature's templates.

A feature keeps its messages as `templates/<language>/<name>.{subject,txt,html,discord}`
beside its code and renders them with a `MessageTemplates` over that folder; the shared
parts every message uses (`en/_email.html`, `en/_button.html`, `en/_footer.txt`,
`en/_footer.discord`) live in lens/web/templates/messages. The context is plain strings
and lists, already in the recipient's time zone, so a rendering depends on nothing but
its context (which is what golden-file tests pin down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)

SHARED = Path(__file__).parent / "templates" / "messages"
LANGUAGES = ("en",)
DISCORD_LIMIT = 2000


def discord_escape(text: str) -> str:
    """A name shown as typed in Discord, not as markdown (no links, no formatting)."""
    for char in "\\*_~`|>[]()<#@":
        text = text.replace(char, "\\" + char)
    return text


def local_time(moment: datetime, zone: str) -> str:
    """'Tuesday 2 March 2027, 18:00 (Europe/Berlin)' in the reader's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone})"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class MessageTemplates:
    """The messages in one feature's template folder, with the shared parts."""

    def __init__(self, folder: Path) -> None:
        self._env = Environment(
            loader=ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(SHARED)]),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["discord"] = discord_escape

    def _template(self, language: str, name: str, part: str) -> Template:
        language = language if language in LANGUAGES else "en"
        return self._env.get_template(f"{language}/{name}.{part}")

    def email(self, name: str, context: dict[str, Any], *, language: str = "en") -> RenderedEmail:
        subject = self._template(language, name, "subject").render(context).strip()
        text = self._template(language, name, "txt").render(context)
        html = self._template(language, name, "html").render(context)
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)

    def discord(self, name: str, context: dict[str, Any], *, language: str = "en") -> str:
        message = self._template(language, name, "discord").render(context).strip()
        if len(message) > DISCORD_LIMIT:
            message = message[: DISCORD_LIMIT - 1] + "…"
        return message
