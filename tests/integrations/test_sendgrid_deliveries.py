"""What SendGrid says when it refuses a notification reaches the admin: the delivery's
last error and the deliveries page carry SendGrid's own `errors[].message`, not only a
status (the real SendGrid client, the vendor faked at the HTTP layer)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from lens.integrations.email.client import SendGridSender
from lens.notifications.announce import announce_group
from lens.notifications.models import Delivery, DeliveryStatus
from tests.fixtures.auth import sign_in
from tests.fixtures.users import make_user
from tests.integrations.fake_sendgrid import FakeSendGrid, error
from tests.notifications.test_delivery import group_of, next_march_first_monday, sender

REFUSAL = error("Does not contain a valid address.", "personalizations.0.to.0.email")


async def test_sendgrids_reason_is_the_deliverys_error_on_the_admin_page(
    db, sessionmaker, client_factory
) -> None:
    _, group, _, _ = await group_of(db, ["UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)
    fake = FakeSendGrid(answers=[(400, REFUSAL)])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        email = SendGridSender(http, api_key="SG.test-key", from_email="team@x.org")
        await sender(sessionmaker, email).run_once()
    refused = await db.scalar(
        select(Delivery)
        .where(Delivery.kind == "group_assigned", Delivery.channel == "email")
        .execution_options(populate_existing=True)
    )
    assert refused is not None and refused.status == DeliveryStatus.FAILED
    assert refused.last_error == (
        "SendGrid refused the message (HTTP 400): personalizations.0.to.0.email: "
        "Does not contain a valid address."
    )
    async with client_factory() as client:
        sign_in(client, await make_user(db, is_admin=True))
        page = await client.get("/admin/deliveries", params={"status": "failed"})
    assert page.status_code == 200
    assert "personalizations.0.to.0.email: Does not contain a valid address." in page.text
