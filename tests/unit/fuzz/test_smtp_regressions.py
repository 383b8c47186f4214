"""What the SMTP fuzzer found, kept as plain examples (each failed before its fix)."""

import asyncio
import base64

from shared.config.submission import SmtpRole
from tests.unit.fuzz.smtp_harness import PASSWORD, USER, SmtpConversation


def test_an_overlong_sasl_response_in_two_segments_is_one_bad_line() -> None:
    """The tail of an AUTH response longer than the line limit, arriving after the limit was hit, was run
    as an SMTP command (aiosmtpd's challenge_auth reads with readline, which drops only what is buffered)."""

    async def main() -> None:
        conversation = SmtpConversation(SmtpRole.SUBMISSION)
        await conversation.start()
        await conversation.send(b"EHLO client.example\r\n")
        assert [r.code for r in await conversation.send(b"AUTH PLAIN\r\n")] == [334]
        line = b"A" * 120 + b" RSET\r\n"  # the line limit is 100 octets
        replies = await conversation.send(line, cuts=[110])
        assert [r.lines for r in replies] == [
            [b"500 5.5.2 Error: line too long (RFC 5321 \xc2\xa74.5.3.1.6)"]
        ]
        assert [r.code for r in await conversation.send(b"NOOP\r\n")] == [250]
        await conversation.end()

    asyncio.run(main())


def test_auth_login_and_cancel() -> None:
    async def main() -> None:
        conversation = SmtpConversation(SmtpRole.SUBMISSION)
        await conversation.start()
        await conversation.send(b"EHLO client.example\r\n")
        assert [r.lines for r in await conversation.send(b"AUTH LOGIN\r\n")] == [[b"334 VXNlcm5hbWU6"]]
        assert [r.code for r in await conversation.send(b"*\r\n")] == [501]
        await conversation.send(b"AUTH LOGIN\r\n")
        await conversation.send(base64.b64encode(USER.encode()) + b"\r\n")
        replies = await conversation.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
        assert [r.code for r in replies] == [235]
        await conversation.end()

    asyncio.run(main())


def test_a_control_character_in_an_unknown_command_is_not_echoed() -> None:
    """aiosmtpd's `500 Error: command "MAIL\\r" not recognized` put a bare CR into the reply line."""

    async def main() -> None:
        conversation = SmtpConversation(SmtpRole.MX)
        await conversation.start()
        replies = await conversation.send(b"MAIL\r SIZE=100\r\n")
        assert [r.lines for r in replies] == [[b'500 5.5.2 Error: command "MAIL?" not recognized']]
        await conversation.end()

    asyncio.run(main())


def test_an_address_the_email_parser_chokes_on_is_a_syntax_error() -> None:
    """`MAIL FROM:x@` made the email package's parser raise IndexError: aiosmtpd's catch-all answered 451
    (a temporary failure, inviting a retry) and logged a traceback. MAIL and RCPT now use our own path
    grammar (501, no brackets); VRFY still goes through aiosmtpd's parser."""

    async def main() -> None:
        conversation = SmtpConversation(SmtpRole.MX)
        await conversation.start()
        await conversation.send(b"EHLO client.example\r\n")
        replies = await conversation.send(b"MAIL FROM:x@\r\n")
        assert [r.code for r in replies] == [501]
        replies = await conversation.send(b"VRFY x@\r\n")
        assert replies and all(r.code // 100 != 4 for r in replies)  # 252: we do not verify
        assert not conversation.handler.exceptions
        await conversation.end()

    asyncio.run(main())
