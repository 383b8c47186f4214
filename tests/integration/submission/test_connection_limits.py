"""One client address cannot take the listener: per-address session and rate limits, stress mode, and a
memory budget for message data shared by all sessions (issue 9 §3, §5).

Clients bind to different loopback source addresses (127.0.0.2, .3 ...) to be different client addresses.
"""

import smtplib
import time
from collections.abc import Iterator

import pytest
import redis

from tests.integration.submission.site import DOMAIN, PASSWORD, RawSmtp, Reception, Site, all_envelopes

USER = f"limits@{DOMAIN}"
MESSAGE = b"Subject: limits\r\n\r\nbody\r\n"


@pytest.fixture(scope="module", autouse=True)
def user(site: Site) -> str:
    return site.add_user(USER)


@pytest.fixture
def opened() -> Iterator[list[RawSmtp]]:
    """Connections a test opens; all closed at its end."""
    clients: list[RawSmtp] = []
    yield clients
    for client in clients:
        client.close()


def connect(reception: Reception, source: str, opened: list[RawSmtp], *, timeout: float = 10.0) -> RawSmtp:
    client = RawSmtp(reception.host, reception.port, source=source, timeout=timeout)
    opened.append(client)
    return client


def served(reception: Reception, source: str) -> str:
    """Greeting and EHLO of a fresh connection from `source`, then QUIT; the greeting is returned."""
    with RawSmtp(reception.host, reception.port, source=source) as client:
        greeting = client.reply()
        if greeting.startswith("220 "):
            assert client.command("EHLO other.example").startswith("250-")
            assert client.command("QUIT").startswith("221 ")
        return greeting


def test_a_flood_from_one_address_leaves_room_for_the_others(site: Site, opened: list[RawSmtp]) -> None:
    """With the default limits (50 per address, 100 in all) one address gets 50 idle sessions, no more."""
    mx = site.start("mx", YUBIN_IDLE_TIMEOUT_S="300")
    for _ in range(50):
        assert connect(mx, "127.0.0.2", opened).reply().startswith("220 ")
    refused = connect(mx, "127.0.0.2", opened)
    assert refused.reply() == "421 4.7.0 mail.alpha.test Error: too many connections from 127.0.0.2"
    assert refused.at_eof()
    assert served(mx, "127.0.0.3").startswith("220 ")


def test_per_address_limit_on_submission(site: Site, opened: list[RawSmtp]) -> None:
    submission = site.start("submission", YUBIN_MAX_CONNECTIONS_PER_IP="3", YUBIN_ALLOW_PLAINTEXT_AUTH="true")
    for _ in range(3):
        assert connect(submission, "127.0.0.2", opened).reply().startswith("220 ")
    refused = connect(submission, "127.0.0.2", opened)
    assert refused.reply() == "421 4.7.0 mail.alpha.test Error: too many connections from 127.0.0.2"
    assert refused.at_eof()
    with smtplib.SMTP(submission.host, submission.port, timeout=10, source_address=("127.0.0.3", 0)) as smtp:
        smtp.login(USER, PASSWORD)
        assert smtp.sendmail(USER, [USER], MESSAGE) == {}
    # A slot of 127.0.0.2 comes back when one of its sessions ends.
    assert opened.pop(0).command("QUIT").startswith("221 ")
    for _ in range(50):
        if served(submission, "127.0.0.2").startswith("220 "):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the freed per-address slot was never reused")


def test_connection_rate_per_address(site: Site) -> None:
    mx = site.start("mx", YUBIN_MAX_CONNECTION_RATE_PER_IP="5", YUBIN_CONNECTION_RATE_WINDOW_S="600")
    for _ in range(5):
        assert served(mx, "127.0.0.4").startswith("220 ")
    refusal = "421 4.7.0 mail.alpha.test Error: too many connections from 127.0.0.4"
    assert served(mx, "127.0.0.4") == refusal
    assert served(mx, "127.0.0.4") == refusal  # refused attempts count too: hammering does not get through
    assert served(mx, "127.0.0.5").startswith("220 ")


def test_stress_mode_sheds_an_idle_flood(site: Site, opened: list[RawSmtp]) -> None:
    """Idle sessions from several addresses fill the listener; under stress their idle timeout drops from
    300 s to 2 s, so they are closed and a new client is served."""
    mx = site.start(
        "mx",
        YUBIN_MAX_CONNECTIONS="10",
        YUBIN_MAX_CONNECTIONS_PER_IP="4",
        YUBIN_STRESS_THRESHOLD_PERCENT="80",
        YUBIN_IDLE_TIMEOUT_S="300",
        YUBIN_STRESS_IDLE_TIMEOUT_S="2",
    )
    flood = [connect(mx, source, opened, timeout=60) for source in ["127.0.0.2"] * 4 + ["127.0.0.3"] * 4]
    for client in flood:
        assert client.reply().startswith("220 ")
        assert client.command("EHLO idle.example").startswith("250-")
    # 8 of 10 is the stress mark: from here on every one of them may be idle for 2 s only.
    for client in flood:
        assert client.reply() == "421 4.4.2 mail.alpha.test Error: timeout exceeded"
        assert client.at_eof()
    for _ in range(100):
        if served(mx, "127.0.0.5").startswith("220 "):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the new client was never served")


def test_busy_sessions_are_not_shed_under_stress(site: Site, opened: list[RawSmtp]) -> None:
    """Under stress a session that keeps talking stays; only silence is cut short."""
    mx = site.start(
        "mx",
        YUBIN_MAX_CONNECTIONS="4",
        YUBIN_STRESS_THRESHOLD_PERCENT="50",
        YUBIN_IDLE_TIMEOUT_S="300",
        YUBIN_STRESS_IDLE_TIMEOUT_S="2",
    )
    busy, idle = connect(mx, "127.0.0.2", opened), connect(mx, "127.0.0.3", opened, timeout=60)
    assert busy.reply().startswith("220 ") and idle.reply().startswith("220 ")
    idle.sock.settimeout(0.5)
    shed = ""
    for _ in range(120):  # NOOPs well inside the stress timeout until the idle one is shed
        assert busy.command("NOOP").startswith("250 ")
        try:
            shed = idle.reply()
            break
        except TimeoutError:
            continue
    assert shed == "421 4.4.2 mail.alpha.test Error: timeout exceeded"
    assert busy.command("NOOP").startswith("250 ")


@pytest.fixture
def small_memory_mx(site: Site) -> Reception:
    return site.start("mx", YUBIN_MAX_DATA_MEMORY="1000000", YUBIN_MAX_MESSAGE_SIZE="700000")


def start_transaction(client: RawSmtp, size: int | None = None) -> str:
    """Greeting, EHLO, MAIL (with SIZE= if given), RCPT; returns the reply to DATA."""
    assert client.reply().startswith("220 ")
    assert client.command("EHLO budget.example").startswith("250-")
    declared = f" SIZE={size}" if size is not None else ""
    assert client.command(f"MAIL FROM:<sender@remote.example>{declared}").startswith("250 ")
    assert client.command(f"RCPT TO:<{USER}>").startswith("250 ")
    return client.command("DATA")


def body(octets: int) -> bytes:
    line = b"x" * 98 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (octets // len(line)) + b".\r\n"


def test_memory_for_message_data_is_bounded_across_sessions(
    small_memory_mx: Reception, clean_queues: redis.Redis, opened: list[RawSmtp]
) -> None:
    """A budget of 1 MB: while one 600 kB message is held, other big ones get 452 4.3.1, a small one
    passes, and once the memory is free again the refused ones get through."""
    mx = small_memory_mx
    insufficient = "452 4.3.1 Error: insufficient system storage"
    first = connect(mx, "127.0.0.2", opened)
    assert start_transaction(first, size=600_000).startswith("354 ")  # holds 600 kB from here on

    declared = connect(mx, "127.0.0.3", opened)
    assert start_transaction(declared, size=600_000) == insufficient  # refused before any data is sent

    undeclared = connect(mx, "127.0.0.4", opened)
    assert start_transaction(undeclared).startswith("354 ")
    undeclared.send(body(500_000))
    assert undeclared.reply() == insufficient  # found while reading; the data is dropped

    small = connect(mx, "127.0.0.5", opened)
    assert start_transaction(small).startswith("354 ")
    small.send(MESSAGE + b".\r\n")
    assert small.reply().startswith("250 2.0.0 Ok: queued as ")

    first.send(body(590_000))
    assert first.reply().startswith("250 2.0.0 Ok: queued as ")

    # The memory is free again: the refused ones retry and pass (the 452 to DATA kept the transaction).
    assert declared.command("DATA").startswith("354 ")
    declared.send(body(590_000))
    assert declared.reply().startswith("250 2.0.0 Ok: queued as ")
    assert undeclared.command("MAIL FROM:<sender@remote.example>").startswith("250 ")
    assert undeclared.command(f"RCPT TO:<{USER}>").startswith("250 ")
    assert undeclared.command("DATA").startswith("354 ")
    undeclared.send(body(500_000))
    assert undeclared.reply().startswith("250 2.0.0 Ok: queued as ")
    assert len(all_envelopes(clean_queues)["local"]) == 4


def test_a_stalled_message_transfer_is_closed_by_the_idle_timeout(site: Site, opened: list[RawSmtp]) -> None:
    """Silence inside DATA counts like silence between commands (the session time limit is far away).
    The idle timer used to restart itself from each of its own checks once a line had come in later than
    the DATA command, so a transfer that stalled after that was never timed out."""
    mx = site.start("mx", YUBIN_IDLE_TIMEOUT_S="2", YUBIN_SESSION_TIMEOUT_S="600")
    client = connect(mx, "127.0.0.2", opened, timeout=60)
    assert start_transaction(client).startswith("354 ")
    time.sleep(1)  # the first line comes a while after DATA (no timing is asserted)
    client.send(b"Subject: stalled\r\n\r\nfirst line\r\n")  # and then nothing
    assert client.reply() == "421 4.4.2 mail.alpha.test Error: timeout exceeded"
    assert client.at_eof()
