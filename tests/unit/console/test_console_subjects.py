"""Subjects on the console: learnt from `accepted` events (the only ones that carry it), shown for every
event of the message, bounded in memory; a journey's subject is its own accepted event's."""

from collections.abc import Iterator

import pytest

from tests.unit.console.trace_events import ev
from yubin.console.feed import KNOWN_SUBJECTS, Feed
from yubin.console.settings import ConsoleSettings
from yubin.console.timeline import subject_of, summarize
from yubin.console.upstream import SiteClient

EVIL = '<img src=x onerror="window.__xss2=1">'


@pytest.fixture
def feed() -> Iterator[Feed]:
    settings = ConsoleSettings(
        sites={
            domain: {"admin": "http://127.0.0.1:9", "admin_token": "t" * 32, "users": {}}
            for domain in ("alpha.test", "beta.test")
        }
    )
    yield Feed([SiteClient(endpoint, 0.5) for endpoint in settings.endpoints()])


def test_every_later_event_of_the_message_shows_the_accepted_subject(feed: Feed) -> None:
    feed.publish(ev("alpha.test", "submission", "accepted", 1, "QA", subject=EVIL))
    feed.publish(ev("alpha.test", "relay", "attempt", 2, "QA"))
    feed.publish(ev("beta.test", "delivery", "stored", 3, "QB"))
    feed.publish(ev("beta.test", "pop3", "retrieved", 4, "QB", message_id="<other@alpha.test>"))
    assert [event.get("subject") for event in feed.recent] == [EVIL, EVIL, EVIL, None]
    assert summarize(list(feed.recent))[-1]["subject"] == EVIL


def test_a_message_without_message_id_is_known_by_its_site_and_queue_id(feed: Feed) -> None:
    feed.publish(ev("beta.test", "mx", "accepted", 1, "QB", message_id=None, subject="no id"))
    feed.publish(ev("beta.test", "delivery", "stored", 2, "QB", message_id=None))
    feed.publish(ev("alpha.test", "delivery", "stored", 3, "QB", message_id=None))  # another site's QB
    assert [event.get("subject") for event in feed.recent] == ["no id", "no id", None]


def test_the_first_subject_told_stays(feed: Feed) -> None:
    feed.remember_subject("<m1@alpha.test>", "typed in the form")
    feed.publish(ev("alpha.test", "submission", "accepted", 1, "QA", subject="typed in the form"))
    feed.publish(ev("beta.test", "mx", "accepted", 2, "QB", subject="a stranger reusing the Message-ID"))
    assert feed.subjects["<m1@alpha.test>"] == "typed in the form"


def test_known_subjects_are_bounded(feed: Feed) -> None:
    for n in range(KNOWN_SUBJECTS + 50):
        feed.publish(
            ev("alpha.test", "submission", "accepted", 1, f"Q{n}", f"<{n}@alpha.test>", subject=str(n))
        )
    assert len(feed.subjects) == KNOWN_SUBJECTS
    assert "<0@alpha.test>" not in feed.subjects
    assert feed.subjects[f"<{KNOWN_SUBJECTS + 49}@alpha.test>"] == str(KNOWN_SUBJECTS + 49)


def test_a_journeys_subject_is_its_own_accepted_events() -> None:
    events = [
        ev("alpha.test", "relay", "bounced", 3, "QA"),
        ev("beta.test", "mx", "accepted", 2, "QD", message_id="<dsn@alpha.test>", subject="Undelivered"),
        ev("alpha.test", "submission", "accepted", 1, "QA", subject=EVIL),
    ]
    assert subject_of(events, {"<m1@alpha.test>"}) == EVIL
    assert subject_of(events[:2], {"<m1@alpha.test>"}) is None
    no_id = [ev("beta.test", "mx", "accepted", 1, "QB", message_id=None, subject="plain")]
    assert subject_of(no_id, set()) == "plain"
