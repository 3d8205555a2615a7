"""The API documentation page (Swagger UI), served from Lens itself: Swagger UI's files
are vendored in `static/vendor/swagger-ui` (see its README), the page's own start-up is a
static file, so it runs under the site's Content-Security-Policy with no CDN and no
inline script (Swagger UI sets inline styles, so this page alone allows them)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

from lens.web.security import CONTENT_SECURITY_POLICY

ASSETS = "/static/vendor/swagger-ui"
router = APIRouter(include_in_schema=False)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lens API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/api/docs")
async def api_docs() -> HTMLResponse:
    policy = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": policy})


def add_api_docs(app: FastAPI) -> None:
    app.include_router(router)
