"""Certificates on the web: the public page of one (anyone with the address; it says
whether it is valid or revoked, with the verification code), its PDF, revoking it (an
admin), and issuing a cohort's certificates now (an admin, from the completion page)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, CurrentUser, OptionalUser, load_user
from lens.cohorts.models import CohortStatus
from lens.cohorts.service import get_cohort
from lens.completion import certificates
from lens.content.deps import course_titles, loaded_content
from lens.db.engine import unit_of_work
from lens.errors import Conflict, Invalid
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

# The PDFs made lately, by (token, verification code, issuer): a certificate shared on a
# profile is opened many times; what is printed never changes once issued.
KEEP_PDFS = 64
_made: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()


def _url(request: Request, token: str) -> str:
    return f"{get_lens(request).settings.public_url}/certificates/{token}"


async def _page(
    request: Request, token: str, viewer: User | None, *, status_code: int = 200, **extra: object
) -> Response:
    lens = get_lens(request)
    async with lens.sessionmaker() as session:
        cert = await certificates.get_certificate(session, token)
    url = _url(request, token)
    organization = lens.settings.site_name
    response = render(
        request,
        "completion/certificate.html",
        {
            "cert": cert,
            "words": certificates.wording(cert),
            "code": certificates.verification_code(cert, lens.jwt_secret),
            "url": url,
            "organization": organization,
            "mine": viewer is not None and viewer.id == cert.user_id,
            "linkedin": certificates.linkedin_url(cert, url=url, organization=organization),
            "renamed": request.query_params.get("renamed") == "1",
            **extra,
        },
        status_code=status_code,
    )
    response.headers["X-Robots-Tag"] = "noindex"  # shared on purpose, not to be crawled
    return response


@router.get("/certificates/{token}")
async def certificate_page(request: Request, token: str, viewer: OptionalUser) -> Response:
    return await _page(request, token, viewer)


@router.get("/certificates/{token}/certificate.pdf")
async def certificate_pdf(request: Request, token: str) -> Response:
    lens = get_lens(request)
    async with lens.sessionmaker() as session:
        cert = await certificates.get_certificate(session, token)
    if cert.revoked_at is not None:
        raise Conflict("This certificate was revoked; there is no PDF of it.")
    code = certificates.verification_code(cert, lens.jwt_secret)
    key = (cert.token, code, lens.settings.site_name)
    data = _made.get(key)
    if data is None:
        # Made off the event loop (fonts are parsed, pages laid out), kept for a while.
        data = await asyncio.to_thread(
            certificates.pdf,
            cert,
            url=_url(request, token),
            code=code,
            organization=lens.settings.site_name,
        )
        _made[key] = data
        while len(_made) > KEEP_PDFS:
            _made.popitem(last=False)
    else:
        _made.move_to_end(key)
    # A header is Latin-1: an ASCII name, and the name as written for browsers (RFC 6266).
    ascii_name = "".join(c if c.isascii() and c.isalnum() else "-" for c in cert.name)
    plain = ascii_name.strip("-")[:60] or "certificate"
    written = quote(f"certificate-{cert.name[:60]}.pdf", safe="")
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": (
                f"inline; filename=\"certificate-{plain}.pdf\"; filename*=UTF-8''{written}"
            ),
            "X-Robots-Tag": "noindex",
        },
    )


@router.post("/certificates/{token}/revoke")
async def revoke_form(
    request: Request,
    token: str,
    admin: AdminUser,
    reason: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        if confirm != "yes":
            raise Invalid("Tick the box to confirm: a revoked certificate cannot be restored.")
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cert = await certificates.get_certificate(session, token)
            await certificates.revoke(session, cert=cert, by=admin, reason=reason)
    except (Invalid, Conflict) as exc:
        return await _page(
            request, token, admin, status_code=exc.status_code, error=exc.message, reason=reason
        )
    return RedirectResponse(f"/certificates/{token}", status_code=303)


@router.post("/certificates/{token}/name")
async def rename_form(
    request: Request, token: str, user: CurrentUser, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cert = await certificates.get_certificate(session, token)
            await certificates.rename(session, cert=cert, by=user, name=name)
    except (Invalid, Conflict) as exc:
        return await _page(
            request, token, user, status_code=exc.status_code, error=exc.message, typed=name
        )
    return RedirectResponse(f"/certificates/{token}?renamed=1", status_code=303)


@router.post("/admin/cohorts/{cohort_id}/certificates")
async def issue_form(
    request: Request, cohort_id: int, admin: AdminUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    """Issue now, to everyone complete (and, once the cohort has finished, to its
    facilitators): each is told."""
    if confirm != "yes":
        raise Invalid("Tick the box to confirm: each person is sent their certificate.")
    content = loaded_content(request)
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort = await get_cohort(session, cohort_id)
        if cohort.status not in (CohortStatus.RUNNING, CohortStatus.FINISHED):
            raise Conflict(f"{cohort.name} has not started; there is nothing to certify yet.")
        made = await certificates.issue(
            session,
            cohort=cohort,
            content=content,
            course_title=course_titles(request).get(cohort.course_slug, cohort.course_slug),
            by=admin,
            facilitators=cohort.status == CohortStatus.FINISHED,
        )
    runner = get_lens(request).runner
    if runner is not None:
        runner.wake()
    return RedirectResponse(
        f"/admin/cohorts/{cohort_id}/completion?issued={len(made)}", status_code=303
    )
