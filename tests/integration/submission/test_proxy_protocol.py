"""The SMTP listeners behind a real HAProxy sending PROXY v2 (issue 13 §1): the client's own address, not
the front's, is what the Received field, the envelope and the per-address limits see; only the trusted
front may send a header, and it must.

HAProxy connects from 127.0.0.10 (`tests.fixtures.haproxy.FRONT_ADDRESS`), the listeners trust exactly
that, and the clients connect from 127.0.0.2, .3 ... (to HAProxy, or straight to the listener). The module
shares one MX (starting processes is the slow part); each test uses client addresses of its own, so the
sessions another test left behind never count against it.
"""

import smtplib
from collections.abc import Callable, Iterator

import pytest
import redis

from shared.proxy_protocol import encode
from tests.fixtures.haproxy import FRONT_ADDRESS, HOST, Haproxy
from tests.integration.submission.site import (
    DOMAIN,
    PASSWORD,
    RawSmtp,
    Reception,
    Site,
    all_envelopes,
    body_of,
)

USER = f"proxied@{DOMAIN}"
MESSAGE = b"Subject: proxied\r\n\r\nbody\r\n"
BEHIND_FRONT = {"YUBIN_PROXY_PROTOCOL_FROM": FRONT_ADDRESS, "YUBIN_ALLOW_PLAINTEXT_AUTH": "true"}


@pytest.fixture(scope="module", autouse=True)
def user(site: Site) -> str:
    return site.add_user(USER)


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    """Behind the front, two sessions per client address."""
    return site.start("mx", YUBIN_MAX_CONNECTIONS_PER_IP="2", **BEHIND_FRONT)


@pytest.fixture
def opened() -> Iterator[list[RawSmtp]]:
    clients: list[RawSmtp] = []
    yield clients
    for client in clients:
        client.close()


def front_of(haproxy: Callable[..., Haproxy], reception: Reception) -> int:
    return haproxy([(reception.host, reception.port)]).port(reception.port)


@pytest.mark.parametrize("role", ["mx", "submission"])
def test_received_field_and_envelope_name_the_client_behind_the_front(
    site: Site, mx: Reception, haproxy: Callable[..., Haproxy], clean_queues: redis.Redis, role: str
) -> None:
    reception = mx if role == "mx" else site.start(role, **BEHIND_FRONT)
    port = front_of(haproxy, reception)
    with smtplib.SMTP(
        HOST, port, local_hostname="client.example", timeout=10, source_address=("127.0.0.2", 0)
    ) as smtp:
        if role == "submission":
            smtp.starttls()  # aiosmtpd makes a new session state after the handshake: the client must stay
            smtp.login(USER, PASSWORD)
        assert smtp.sendmail(f"someone@{DOMAIN}" if role == "mx" else USER, [USER], MESSAGE) == {}
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["client_addr"] == "127.0.0.2"
    received = body_of(clean_queues, envelope).decode()
    assert received.startswith("Received: from client.example ([127.0.0.2])\r\n")
    assert FRONT_ADDRESS not in received


def test_per_address_limit_counts_the_client_not_the_front(
    mx: Reception, haproxy: Callable[..., Haproxy], opened: list[RawSmtp]
) -> None:
    port = front_of(haproxy, mx)
    for _ in range(2):
        client = RawSmtp(HOST, port, source="127.0.0.3")
        opened.append(client)
        assert client.reply().startswith("220 ")
    third = RawSmtp(HOST, port, source="127.0.0.3")
    opened.append(third)
    assert third.reply() == "421 4.7.0 mail.alpha.test Error: too many connections from 127.0.0.3"
    # Through the same front, another client still gets in: the front's address holds no slots.
    other = RawSmtp(HOST, port, source="127.0.0.5")
    opened.append(other)
    assert other.reply().startswith("220 ")
    assert other.command("EHLO other.example").startswith("250-")


def test_a_proxy_header_from_an_address_that_is_not_a_front_is_refused(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port, source="127.0.0.4") as spoofer:
        assert spoofer.reply().startswith("220 ")  # a direct client is served as before...
        spoofer.send(encode(("192.0.2.66", 4000)) + b"EHLO spoofer.example\r\n")
        assert spoofer.reply() == ""  # ...but one that claims another's address is closed, unanswered
        assert spoofer.at_eof()
    mx.process.wait_for_log("PROXY header from an address that is not a trusted front")
    with RawSmtp(mx.host, mx.port, source="127.0.0.4") as direct:
        assert direct.reply().startswith("220 ")
        assert direct.command("EHLO direct.example").startswith("250-")


def test_the_trusted_front_must_send_a_header(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port, source=FRONT_ADDRESS) as headless:
        headless.send(b"EHLO client.example\r\n")
        assert headless.reply() == ""  # closed without a greeting
        assert headless.at_eof()
    mx.process.wait_for_log("bad PROXY header")


def test_a_local_header_from_the_front_is_served_as_the_front(mx: Reception, opened: list[RawSmtp]) -> None:
    """LOCAL (HAProxy's health checks, §2.2): the connection is the front's own, counted as the front."""
    for _ in range(2):
        check = RawSmtp(mx.host, mx.port, source=FRONT_ADDRESS)
        opened.append(check)
        check.send(encode(None))
        assert check.reply().startswith("220 ")
    third = RawSmtp(mx.host, mx.port, source=FRONT_ADDRESS)
    opened.append(third)
    third.send(encode(None))
    assert third.reply() == f"421 4.7.0 mail.alpha.test Error: too many connections from {FRONT_ADDRESS}"
