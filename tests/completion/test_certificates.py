"""Certificates: issued to those complete and to facilitators, once each; at an
unguessable address with a verification code; revocable (the page then says so, no PDF);
a PDF with the right name; issued by themselves when the cohort finishes."""

from __future__ import annotations

import contextlib
import re
import zlib

import pytest
from sqlalchemy import select

from lens.cohorts.service import set_status
from lens.completion import certificates
from lens.completion.models import Certificate
from lens.completion.tasks import CERTIFY_KIND, certify
from lens.errors import Conflict, Invalid
from lens.jobs.models import Job
from lens.jobs.registry import JobContext
from lens.meetings.models import Attendance, Meeting
from lens.notifications.models import Delivery
from lens.settings import Settings
from lens.users.models import User
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.running import running


async def _came(db, w, signup, numbers=(1,)) -> None:
    for n in numbers:
        meeting = await db.scalar(
            select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == n)
        )
        db.add(Attendance(meeting_id=meeting.id, signup_id=signup.id, status="present"))
    await db.flush()


async def _issue(db, w, **options) -> list[Certificate]:
    return await certificates.issue(
        db, cohort=w.cohort, content=None, course_title="Introduction to AI Safety",
        by=w.admin, **options,
    )  # fmt: skip


async def test_issued_to_those_complete_and_to_facilitators_once(db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    a, b, _ = w.tue_people
    await _came(db, w, a)
    made = await _issue(db, w)
    kinds = sorted((c.kind, c.user_id) for c in made)
    assert kinds == sorted(
        [("completion", a.user_id), ("facilitation", w.fac_tue.user_id),
         ("facilitation", w.fac_thu.user_id)]
    )  # fmt: skip
    cert = next(c for c in made if c.kind == "completion")
    name = (await db.get(User, a.user_id)).display_name
    assert (cert.name, cert.cohort_name, cert.detail) == (name, "Spring 2027", "attended 1 meeting")
    told = list(await db.scalars(select(Delivery).where(Delivery.kind == "certificate_issued")))
    assert {d.user_id for d in told} == {c.user_id for c in made}
    # Again: nothing new, until someone else completes.
    assert await _issue(db, w) == []
    await _came(db, w, b)
    (second,) = await _issue(db, w, facilitators=False)
    assert second.user_id == b.user_id


async def test_the_address_is_unguessable_and_the_code_verifies(db) -> None:
    w = await running(db, completion_meetings=0, completion_modules="none")
    made = await _issue(db, w, facilitators=False)
    tokens = [c.token for c in made]
    assert len(made) == 7 and len(set(tokens)) == 7
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)  # 128 random bits
    cert = made[0]
    code = certificates.verification_code(cert, "k" * 40)
    assert re.fullmatch(r"[0-9A-F]{4}(-[0-9A-F]{4}){3}", code)
    assert certificates.verification_code(cert, "k" * 40) == code
    assert certificates.verification_code(cert, "x" * 40) != code  # another site's key
    cert.name = "Someone Else"
    assert certificates.verification_code(cert, "k" * 40) != code  # a changed copy


def _pdf_text(data: bytes) -> str:
    """The document's metadata and its (decompressed) streams, as text."""
    out = [data.decode("latin-1")]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(stream).decode("latin-1"))
    return "\n".join(out)


async def test_the_page_the_pdf_and_revoking(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    a = w.tue_people[0]
    user = await db.get(User, a.user_id)
    user.nickname = "Zoë Łukasiewicz"
    await _came(db, w, a)
    (cert,) = [c for c in await _issue(db, w, facilitators=False)]
    url = f"/certificates/{cert.token}"
    # Anyone with the address sees it; nobody without.
    page = await app_client.get(url)
    assert page.status_code == 200 and "Valid." in page.text
    assert "Zoë Łukasiewicz" in page.text and "Certificate of completion" in page.text
    assert "Add to LinkedIn" not in page.text  # only for its owner
    assert page.headers["x-robots-tag"] == "noindex"
    assert (await app_client.get("/certificates/not-a-token")).status_code == 404
    sign_in(app_client, user)
    mine = await app_client.get(url)
    assert "https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME" in mine.text
    pdf = await app_client.get(f"{url}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 5000
    assert "filename*=UTF-8''certificate-Zo%C3%AB" in pdf.headers["content-disposition"]
    text = _pdf_text(pdf.content)
    title = "Certificate of completion: Zoë Łukasiewicz".encode("utf-16-be").hex().upper()
    assert title in text.upper().replace(" ", "")  # the document's title, with the name
    # Revoking: admins only, with a reason and a confirmation.
    revoke = f"{url}/revoke"
    assert (
        await app_client.post(revoke, data={"reason": "x", "confirm": "yes"}, headers=ORIGIN)
    ).status_code == 403
    sign_in(app_client, w.admin)
    unconfirmed = await app_client.post(revoke, data={"reason": "copied"}, headers=ORIGIN)
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    with pytest.raises(Invalid, match="Say why"):
        await certificates.revoke(db, cert=cert, by=w.admin, reason=" ")
    done = await app_client.post(
        revoke, data={"reason": "attendance was misrecorded", "confirm": "yes"}, headers=ORIGIN
    )
    assert done.status_code == 303
    after = await app_client.get(url)
    assert "Revoked" in after.text and "attendance was misrecorded" in after.text
    assert "Valid." not in after.text
    assert (await app_client.get(f"{url}/certificate.pdf")).status_code == 409
    await db.refresh(cert)
    with pytest.raises(Conflict):
        await certificates.revoke(db, cert=cert, by=w.admin, reason="again")


async def test_issued_when_the_cohort_finishes(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    await _came(db, w, w.tue_people[0])
    await set_status(db, w.cohort, "finished")
    (job,) = await db.scalars(select(Job).where(Job.kind == CERTIFY_KIND))
    ctx = JobContext(session=db, job_id=job.id, kind=CERTIFY_KIND, attempt=1, settings=Settings())
    await certify(ctx, job.payload)
    made = list(await db.scalars(select(Certificate).where(Certificate.cohort_id == w.cohort.id)))
    assert sorted(c.kind for c in made) == ["completion", "facilitation", "facilitation"]
    assert {c.course_title for c in made} == {"Introduction to AI Safety"}
    assert all(c.issued_by is None for c in made)
    # Everyone else hears where they ended (a quarter of an hour later, after the job).
    summary = list(await db.scalars(select(Delivery).where(Delivery.kind == "cohort_finished")))
    participants = {s.user_id for s in [*w.tue_people, *w.thu_people]}  # in groups
    assert {d.user_id for d in summary} == participants
    from lens.notifications.context import Drop, Site, prepare

    site = Site(
        base_url="https://lens.example.org", secret="s" * 40, from_email="t@x.org",
        content=app_client.app.state.content.content,
    )  # fmt: skip
    by_user = {d.user_id: d for d in summary if d.channel == "email"}
    with pytest.raises(Drop, match="certificate"):
        await prepare(
            db, by_user[w.tue_people[0].user_id], await db.get(User, w.tue_people[0].user_id), site
        )
    other = w.tue_people[1]
    told = (
        await prepare(db, by_user[other.user_id], await db.get(User, other.user_id), site)
    ).context
    assert (told["attended"], told["complete"], told["missing"]) == (0, False, ["1 more meeting"])


async def test_an_admin_issues_them_from_the_completion_page(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    await _came(db, w, w.tue_people[0])
    sign_in(app_client, w.admin)
    page = await app_client.get(f"/admin/cohorts/{w.cohort.id}/completion")
    assert "Yes, issue 1 certificate now" in page.text
    issued = await app_client.post(
        f"/admin/cohorts/{w.cohort.id}/certificates", data={"confirm": "yes"}, headers=ORIGIN
    )
    assert issued.status_code == 303
    shown = await app_client.get(issued.headers["location"])
    assert "1 certificate issued" in shown.text and ">certificate</a>" in shown.text
    made = list(await db.scalars(select(Certificate)))
    assert [c.kind for c in made] == ["completion"]  # running: facilitators at the end
    sign_in(app_client, await db.get(User, w.tue_people[0].user_id))
    home = await app_client.get("/my-course")
    assert f'href="/certificates/{made[0].token}"' in home.text


async def test_no_certificates_while_the_modules_cannot_be_checked(db) -> None:
    w = await running(db, completion_meetings=0)  # modules: the required ones
    with pytest.raises(Conflict, match="certificates wait"):
        await _issue(db, w)
    assert list(await db.scalars(select(Certificate))) == []


async def test_the_owner_corrects_the_name_printed(app_client, db) -> None:
    w = await running(db, completion_meetings=1, completion_modules="none")
    a = w.tue_people[0]
    await _came(db, w, a)
    (cert,) = await _issue(db, w, facilitators=False)
    code = certificates.verification_code(cert, "k" * 40)
    url = f"/certificates/{cert.token}/name"
    sign_in(app_client, await db.get(User, w.tue_people[1].user_id))
    assert (await app_client.post(url, data={"name": "Not Me"}, headers=ORIGIN)).status_code == 403
    sign_in(app_client, await db.get(User, a.user_id))
    page = await app_client.get(f"/certificates/{cert.token}")
    assert "Name as it should be printed" in page.text
    empty = await app_client.post(url, data={"name": "  "}, headers=ORIGIN)
    assert empty.status_code == 422 and "Write the name" in empty.text
    done = await app_client.post(url, data={"name": "  Ada   King "}, headers=ORIGIN)
    assert done.status_code == 303
    await db.refresh(cert)
    assert cert.name == "Ada King"
    assert certificates.verification_code(cert, "k" * 40) != code
    shown = await app_client.get(done.headers["location"])
    assert "Ada King" in shown.text and "so is its verification code" in shown.text
