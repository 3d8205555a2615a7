"""Every template compiles at start-up (production), so no request compiles one on the
event loop; a template that does not compile fails here, not for a reader."""

from __future__ import annotations

from lens.web.templating import compile_templates, templates


def test_every_template_compiles_and_stays_in_the_cache() -> None:
    count = compile_templates()
    assert count == len(templates.env.list_templates()) > 50
    assert templates.env.cache is not None and len(templates.env.cache) >= count
