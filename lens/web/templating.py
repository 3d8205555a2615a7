from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from starlette.responses import Response

from lens import __version__
from lens.web.markdown import render_markdown
from lens.web.static import HashedStaticFiles

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["lens_version"] = __version__


STATIC = HashedStaticFiles(directory=STATIC_DIR)


@pass_context
def _url_for(context: Any, name: str, /, **path_params: Any) -> str:
    """A path, not an absolute URL: right behind any proxy, whichever scheme and host the
    request arrived with (an https page never links its own files over http://). Static
    files get their content's hash (lens.web.static: cached for a year)."""
    if name == "static":
        return STATIC.url(str(path_params["path"]))
    return str(context["request"].url_for(name, **path_params).path)


templates.env.globals["url_for"] = _url_for
# Sanitised HTML (lens.web.markdown), so templates may mark it safe.
templates.env.filters["markdown"] = lambda text: Markup(render_markdown(text))  # noqa: S704


def compile_templates() -> int:
    """Compile every template now (Jinja keeps them: some 60, its cache holds 400), not
    on each one's first use by a request: compiling one held the event loop for over
    100 ms (bench/reader, a loop.stall in jinja2's lexer). Blocking (about 1.5 s on the
    2-core machine): run it in a thread at start-up. Returns how many."""
    names = templates.env.list_templates()
    for name in names:
        templates.env.get_template(name)
    return len(names)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)


def render_fragment(request: Request, name: str, context: dict[str, Any] | None = None) -> Markup:
    """A template rendered as a piece of a page (a panel), not as a response."""
    html = templates.get_template(name).render({"request": request, **(context or {})})
    return Markup(html)  # noqa: S704 (autoescaped template output)
