"""Reading remote SMTP replies into per-recipient statuses, and refusing unsafe envelope addresses."""

import pytest

from services.relay.delivery import smtp_path_ok
from services.relay.smtp_session import enhanced_status, status_from_reply
from shared.models import RecipientState


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (550, "5.1.1 <bob@far.test>: no such user", "5.1.1"),
        (451, "4.7.1 greylisted, come back later", "4.7.1"),
        (250, "2.0.0 Ok: queued as 1234", "2.0.0"),
        (550, "no such user", "5.0.0"),
        (452, "5.2.2 mailbox full", "4.0.0"),  # inconsistent class: trust the reply code
        (421, "", "4.0.0"),
    ],
)
def test_enhanced_status(code: int, text: str, status: str) -> None:
    assert enhanced_status(code, text) == status


@pytest.mark.parametrize(
    ("code", "state"),
    [(250, RecipientState.DELIVERED), (451, RecipientState.DEFERRED), (554, RecipientState.FAILED)],
)
def test_reply_classes(code: int, state: RecipientState) -> None:
    status = status_from_reply("bob@far.test", code, "x.y.z\nsecond line", "mx.far.test")
    assert status.state == state
    assert status.diagnostic == f"{code} x.y.z second line"
    assert status.remote_mta == "mx.far.test"


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("bob@far.test", True),
        ("bob@far.test\r\nRCPT TO:<evil@x>", False),
        ("bob@far.test>", False),
        ("bob\x00@far.test", False),
        ("no-at-sign", False),
        ("b" * 300 + "@far.test", False),
    ],
)
def test_recipient_paths(address: str, ok: bool) -> None:
    assert smtp_path_ok(address, mailbox=True) is ok


def test_null_sender_is_a_valid_reverse_path() -> None:
    assert smtp_path_ok("", mailbox=False)
