import pytest

from services.submission.addresses import parse_mailbox


def test_parse_lowercases_the_domain_only() -> None:
    mailbox = parse_mailbox("Alice@Alpha.Test.")
    assert mailbox is not None
    assert (mailbox.local, mailbox.domain, mailbox.address) == ("Alice", "alpha.test", "Alice@alpha.test")
    assert not mailbox.has_routing


@pytest.mark.parametrize(
    "local", ["user%other.example", "other.example!user", '"user@other.example"', '"user"']
)
def test_sender_specified_routing(local: str) -> None:
    mailbox = parse_mailbox(f"{local}@alpha.test")
    assert mailbox is not None and mailbox.has_routing


@pytest.mark.parametrize(
    "address",
    [
        "",
        "<>",
        "nodomain",
        "@alpha.test",
        "a\x00b@alpha.test",
        "a@b\x7f",
        "x" * 65 + "@a.test",
        "a@" + "d" * 256,
        "a\udcffb@alpha.test",
    ],
)
def test_unusable_addresses(address: str) -> None:
    assert parse_mailbox(address) is None
