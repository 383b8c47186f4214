"""End to end on one site: a message the real delivery service stored is fetched over POP3, byte for byte."""

import asyncio
import time
from collections.abc import Callable

from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY
from tests.fixtures.processes import ServiceProcess
from tests.integration.pop3.conftest import PASSWORD, Pop3Server, Pop3Site

MESSAGE = (
    "From: ann@beta.test\r\nTo: {user}\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
    "Message-ID: <pop3-e2e@beta.test>\r\n\r\nGrüße über POP3\r\n.leading dot\r\n"
)


async def publish(redis_url: str, body: bytes, recipient: str) -> None:
    redis = connect(redis_url)
    try:
        envelope = Envelope(
            sender="ann@beta.test", recipients=[recipient], body_id="", message_id="<pop3-e2e@beta.test>"
        )
        await enqueue(redis, body, {LOCAL_DELIVERY: envelope})
    finally:
        await redis.aclose()


def test_message_stored_by_delivery_is_retrieved_exactly(
    site: Pop3Site, pop3: Pop3Server, user: str, service_factory: Callable[..., ServiceProcess]
) -> None:
    delivery = service_factory(
        "services.delivery",
        {**site.auth.env, "YUBIN_MAIL_ROOT": str(site.mail_root), "YUBIN_HOSTNAME": "mx.alpha.test",
         "YUBIN_BUS_BLOCK_MS": "100"},
        name="delivery",
    )  # fmt: skip
    delivery.wait_for_log('"delivery started"')
    body = MESSAGE.format(user=user).encode()
    asyncio.run(publish(site.redis_url, body, user))

    deadline = time.monotonic() + 20
    while not site.files(user, "new"):
        assert time.monotonic() < deadline, f"not delivered:\n{delivery.logs()[-3000:]}"
        time.sleep(0.05)

    client = pop3.login(user, PASSWORD)
    (listed,) = client.list()[1]
    (uid,) = client.uidl()[1]
    response, lines, _ = client.retr(1)
    client.quit()
    fetched = b"".join(line + b"\r\n" for line in lines)

    expected = f"Return-Path: <ann@beta.test>\r\nDelivered-To: {user}\r\n".encode() + body
    assert fetched == expected
    assert listed == f"1 {len(expected)}".encode() and response == f"+OK {len(expected)} octets".encode()
    # The UIDL is the file's base name (time.unique.host), the same after the move to cur/.
    (name,) = site.files(user, "cur")
    assert uid.split()[1].decode() == name.split(",")[0]
