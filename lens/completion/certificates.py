"""Certificates: issued to the participants who completed a cohort and to the
facilitators who led its groups, automatically when the cohort finishes or when an admin
issues them; public at an unguessable address, with a verification code the site's key
makes (anyone can check it on that page); as a PDF; revocable by an admin (the page then
says so, and the PDF is no longer served).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts import audit
from lens.cohorts.models import Cohort, Group, GroupMember, GroupStatus, Role, Signup
from lens.completion.events import CertificateIssued
from lens.completion.models import Certificate, CertificateKind
from lens.completion.service import standings
from lens.content.parsed import ContentSet
from lens.db.base import utcnow
from lens.errors import Conflict, Forbidden, Invalid, NotFound
from lens.events import publish
from lens.meetings.models import Meeting
from lens.scheduling.change_plan import plural
from lens.scheduling.service import lock_cohort
from lens.users.models import User

FONTS = Path(__file__).parent / "fonts"


def new_token() -> str:
    return secrets.token_urlsafe(16)  # 128 bits


def verification_code(cert: Certificate, secret: str) -> str:
    """What the site's key says of what is printed: anyone can compare the code on a copy
    with the one on the certificate's page; a changed name or course gives another."""
    text = "|".join(
        [cert.token, cert.kind, cert.name, cert.course_title, cert.cohort_name,
         cert.starts_on.isoformat(), cert.ends_on.isoformat(), cert.issued_at.date().isoformat()]
    )  # fmt: skip
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:16].upper()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


async def _dates(session: AsyncSession, cohort: Cohort) -> tuple[date, date]:
    first, last = (
        await session.execute(
            select(func.min(Meeting.starts_at), func.max(Meeting.starts_at))
            .join(Group, Group.id == Meeting.group_id)
            .where(Group.cohort_id == cohort.id, Meeting.status == "scheduled")
        )
    ).one()
    start = first.date() if first else cohort.start_date
    end = last.date() if last else cohort.start_date + timedelta(weeks=max(cohort.meetings - 1, 0))
    return start, end


async def issue(
    session: AsyncSession,
    *,
    cohort: Cohort,
    content: ContentSet | None,
    course_title: str,
    by: User | None,
    facilitators: bool = True,
) -> list[Certificate]:
    """Certificates for everyone in the cohort who has earned one and has none yet: the
    participants complete now, and (with `facilitators`) each facilitator who led a
    group. Returns the new ones; each person hears of theirs. Takes the cohort's lock:
    the admin's button and the cohort-end job cannot both issue one."""
    await lock_cohort(session, cohort.id)
    have = set(
        (
            await session.execute(
                select(Certificate.signup_id, Certificate.kind).where(
                    Certificate.cohort_id == cohort.id
                )
            )
        ).all()
    )
    rule, rows = await standings(session, cohort=cohort, content=content)
    if rule.modules != "none" and (content is None or cohort.course_slug not in content.courses):
        raise Conflict(
            f"The course {cohort.course_slug!r} is not loaded, so the modules completed "
            "cannot be checked: certificates wait until the content is back."
        )
    start, end = await _dates(session, cohort)
    earned: list[tuple[Signup, User, str, str]] = [
        (
            s.row.signup,
            s.row.user,
            CertificateKind.COMPLETION,
            f"attended {plural(s.attended, 'meeting')}"
            + (f" and completed {plural(len(s.modules_done), 'module')}" if s.modules_done else ""),
        )
        for s in rows
        if s.complete and s.row.user.deleted_at is None
    ]
    if facilitators:
        led = await session.execute(
            select(Signup, User, func.count(Group.id))
            .join(User, User.id == Signup.user_id)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(
                Group.cohort_id == cohort.id,
                Group.status.in_([GroupStatus.ACTIVE, GroupStatus.DISBANDED]),
                GroupMember.role == Role.FACILITATOR,
                User.deleted_at.is_(None),
            )
            .group_by(Signup.id, User.id)
        )
        earned += [
            (signup, user, CertificateKind.FACILITATION, f"led {plural(n, 'group')}")
            for signup, user, n in led.all()
        ]
    made = []
    for signup, user, kind, detail in earned:
        if (signup.id, kind) in have:
            continue
        cert = Certificate(
            token=new_token(),
            kind=kind,
            signup_id=signup.id,
            user_id=user.id,
            cohort_id=cohort.id,
            name=user.display_name[:200],
            course_title=course_title[:300],
            cohort_name=cohort.name,
            starts_on=start,
            ends_on=end,
            detail=detail,
            issued_by=by.id if by else None,
            issued_at=utcnow(),
        )
        session.add(cert)
        made.append(cert)
    await session.flush()
    for cert in made:
        await publish(
            session,
            CertificateIssued(certificate_id=cert.id, user_id=cert.user_id, cohort_id=cohort.id),
        )
    return made


async def get_certificate(session: AsyncSession, token: str) -> Certificate:
    cert = await session.scalar(select(Certificate).where(Certificate.token == token))
    if cert is None:
        raise NotFound("There is no certificate at this address.")
    return cert


async def revoke(session: AsyncSession, *, cert: Certificate, by: User, reason: str) -> None:
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why the certificate is revoked: the certificate's page shows it.")
    if len(reason) > 500:
        raise Invalid("Keep the reason under 500 characters.")
    if cert.revoked_at is not None:
        raise Conflict("This certificate was revoked already.")
    cert.revoked_at, cert.revoked_by, cert.revoked_reason = utcnow(), by.id, reason
    await session.flush()
    if cert.cohort_id is not None:
        await audit.record(
            session,
            cohort_id=cert.cohort_id,
            actor=by,
            action="certificate.revoke",
            subject_user_id=cert.user_id,
            details={"person": cert.name, "kind": cert.kind},
            reason=reason,
        )


async def rename(session: AsyncSession, *, cert: Certificate, by: User, name: str) -> None:
    """The name printed, as its owner (or an admin) wants it: the account's name is often
    a nickname or the start of an e-mail address. The verification code follows."""
    name = " ".join(name.split())
    if not name:
        raise Invalid("Write the name to print on the certificate.")
    if len(name) > 120:
        raise Invalid("The name is too long for the certificate: 120 characters at most.")
    if cert.revoked_at is not None:
        raise Conflict("This certificate was revoked; its name no longer changes.")
    if not (by.is_admin or by.id == cert.user_id):
        raise Forbidden("Only the certificate's owner or an admin changes its name.")
    if name == cert.name:
        return
    before, cert.name = cert.name, name
    await session.flush()
    if cert.cohort_id is not None:
        await audit.record(
            session,
            cohort_id=cert.cohort_id,
            actor=by,
            action="certificate.rename",
            subject_user_id=cert.user_id,
            details={"person": name, "from": before, "kind": cert.kind},
        )


def linkedin_url(cert: Certificate, *, url: str, organization: str) -> str:
    """LinkedIn's "add to profile" form, filled in."""
    kind = (
        "Certificate of completion"
        if cert.kind == CertificateKind.COMPLETION
        else ("Certificate of facilitation")
    )
    return "https://www.linkedin.com/profile/add?" + urlencode(
        {
            "startTask": "CERTIFICATION_NAME",
            "name": f"{cert.course_title}: {kind}",
            "organizationName": organization,
            "issueYear": cert.issued_at.year,
            "issueMonth": cert.issued_at.month,
            "certUrl": url,
            "certId": cert.token,
        }
    )


@dataclass(frozen=True)
class Printed:
    heading: str
    lead: str  # before the name
    body: str  # after it


def wording(cert: Certificate) -> Printed:
    span = f"{cert.starts_on:%-d %B %Y} to {cert.ends_on:%-d %B %Y}"
    if cert.kind == CertificateKind.FACILITATION:
        return Printed(
            "Certificate of facilitation",
            "This certifies that",
            f"facilitated {cert.course_title} ({cert.cohort_name}, {span}) and {cert.detail}.",
        )
    return Printed(
        "Certificate of completion",
        "This certifies that",
        f"completed {cert.course_title} ({cert.cohort_name}, {span}), and {cert.detail}.",
    )


def pdf(cert: Certificate, *, url: str, code: str, organization: str) -> bytes:
    """The certificate on an A4 landscape page, in DejaVu Sans (bundled: Latin, Greek and
    Cyrillic names print as written; right-to-left and CJK scripts are not shaped)."""
    from fpdf import FPDF  # imported here: only this needs it

    words = wording(cert)
    doc = FPDF(orientation="landscape", format="A4")
    doc.set_title(f"{words.heading}: {cert.name}")
    doc.set_author(organization)
    doc.set_creator("Lens")
    doc.set_auto_page_break(auto=False)
    doc.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    doc.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    doc.add_page()
    doc.set_draw_color(35, 84, 199)
    doc.set_line_width(1.2)
    doc.rect(10, 10, 277, 190)
    doc.set_text_color(29, 31, 35)
    doc.set_font("DejaVu", "B", 28)
    doc.set_y(38)
    doc.cell(0, 14, words.heading, align="C", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("DejaVu", "", 14)
    doc.ln(8)
    doc.cell(0, 8, words.lead, align="C", new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    size = 30 if len(cert.name) <= 40 else 20
    doc.set_font("DejaVu", "B", size)
    doc.multi_cell(0, size * 0.5, cert.name, align="C", new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)
    doc.set_font("DejaVu", "", 14)
    doc.set_x(35)
    doc.multi_cell(227, 8, words.body, align="C", new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    doc.cell(
        0, 8, f"Issued by {organization} on {cert.issued_at:%-d %B %Y}", align="C",
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    doc.set_font("DejaVu", "", 9)
    doc.set_y(178)
    doc.cell(0, 5, f"Verify: {url}", align="C", link=url, new_x="LMARGIN", new_y="NEXT")
    doc.cell(0, 5, f"Verification code {code}", align="C")
    out = BytesIO()
    doc.output(out)
    return out.getvalue()
