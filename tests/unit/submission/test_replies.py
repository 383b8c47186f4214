import pytest

from services.submission import replies


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("250 OK", "250 2.0.0 OK"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        ('500 Error: command "X" not recognized', '500 5.5.2 Error: command "X" not recognized'),
        (
            "552 Error: message size exceeds fixed maximum message size",
            "552 5.3.4 Error: message size exceeds fixed maximum message size",
        ),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
        ("459 odd", "459 4.0.0 odd"),
        ("553 5.1.3 Error: malformed address", "553 5.1.3 Error: malformed address"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),
    ],
)
def test_with_enhanced_code(reply: str, expected: str) -> None:
    assert replies.with_enhanced_code(reply) == expected


def test_our_own_replies_all_carry_enhanced_codes() -> None:
    for name in dir(replies):
        value = getattr(replies, name)
        if name.isupper() and isinstance(value, str) and value[:1] in "245":
            assert replies.with_enhanced_code(value) == value, name
