"""Markdown to safe HTML, for course text, article bodies and tutor replies.

Authors' Markdown may contain raw HTML (articles often do); everything is rendered, then
sanitised with nh3 (ammonia): no scripts, no event handlers, no `javascript:` URLs, and
every link gets rel="noopener noreferrer".
"""

from __future__ import annotations

import re
from functools import cache

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin

_TAGS = {
    *("a", "abbr", "b", "blockquote", "br", "code", "del", "details", "div", "em"),
    *("figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins"),
    *("kbd", "li", "mark", "ol", "p", "pre", "q", "s", "section", "small", "span", "strong"),
    *("sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"),
}
_ATTRIBUTES = {
    "a": {"href", "title", "id"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "li": {"id"},
    "section": {"class"},
    "sup": {"class", "id"},
    "h1": {"id"},
    "h2": {"id"},
    "h3": {"id"},
    "h4": {"id"},
}


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin)
    return md


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# A size for an image, carried in its URL's fragment by the content parser
# (`![[x.png|300x200]]` becomes `x.png#lens-size=300x200`): Markdown has no syntax for it.
_SIZED = re.compile(r'<img src="([^"#]*)#lens-size=(\d+)(?:x(\d+))?"')


def _sized(match: re.Match[str]) -> str:
    height = f' height="{match.group(3)}"' if match.group(3) else ""
    return f'<img src="{match.group(1)}" width="{match.group(2)}"{height}'


def render_markdown(text: str) -> str:
    """Markdown (with raw HTML allowed) to sanitised HTML."""
    html = sanitize(_parser().render(text or ""))
    return _SIZED.sub(_sized, html) if "#lens-size=" in html else html
