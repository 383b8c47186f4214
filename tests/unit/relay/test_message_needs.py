"""What a message needs from the receiving server: SMTPUTF8 for non-ASCII local parts and headers,
8BITMIME for 8-bit octets; a non-ASCII domain alone goes as its A-label."""

from services.relay.message_needs import MessageNeeds, ascii_address, message_needs


def test_ascii_forms_of_addresses() -> None:
    assert ascii_address("ann@beta.test") == "ann@beta.test"
    assert ascii_address("ann@bücher.test") == "ann@xn--bcher-kva.test"
    assert ascii_address("jörg@beta.test") is None
    assert ascii_address("jörg@bücher.test") is None


def test_headers_and_body_are_told_apart() -> None:
    assert message_needs(b"Subject: hi\r\n\r\nhello\r\n") == MessageNeeds(utf8_headers=False, eight_bit=False)
    body_only = "Subject: hi\r\n\r\nGrüße\r\n".encode()
    assert message_needs(body_only) == MessageNeeds(utf8_headers=False, eight_bit=True)
    header = "Subject: Grüße\r\n\r\nhello\r\n".encode()
    assert message_needs(header) == MessageNeeds(utf8_headers=True, eight_bit=True)
