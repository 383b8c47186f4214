"""`yubin trace`'s text lines: the accepted event's subject first, quoted, unprintable characters escaped."""

from yubin.cli.trace import text_line


def event(name: str, **detail: object) -> dict:
    return {
        "site": "alpha.test",
        "service": "submission",
        "event": name,
        "queue_id": "Q1",
        "at": "2026-11-28T12:00:01.250000+00:00",
        "detail": detail,
    }


def test_the_accepted_line_starts_with_the_quoted_subject() -> None:
    line = text_line(event("accepted", sender="alice@alpha.test", subject="Lunch at noon", size=42))
    assert line.endswith('Q1  "Lunch at noon" sender=alice@alpha.test size=42')
    assert line.startswith("12:00:01.250 alpha.test submission accepted")


def test_a_subject_cannot_pass_for_other_fields_or_reach_the_terminal() -> None:
    line = text_line(event("accepted", subject='x" sender=mallory@evil.test \x1b[2J\u202eevil'))
    assert '"x\\" sender=mallory@evil.test \\u001b[2J\\u202eevil"' in line
    assert "\x1b" not in line and "\u202e" not in line


def test_events_without_a_subject_are_as_before() -> None:
    assert text_line(event("attempt", reply="250 ok")).endswith("Q1  reply=250 ok")
