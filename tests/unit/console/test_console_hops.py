"""The live map's model: the hop each trace event moves along, and each node's rate and depth."""

from datetime import UTC, datetime, timedelta

from shared.streams import LOCAL_DELIVERY, OUTBOUND
from yubin.console.hops import DNS, HopStats, hop_of

SITES = ["alpha.test", "beta.test"]
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ev(site, service, event, queue_id="q1", message_id="<m1@alpha.test>", ago_s=1.0, **detail):
    return {
        "site": site,
        "service": service,
        "event": event,
        "queue_id": queue_id,
        "message_id": message_id,
        "at": (NOW - timedelta(seconds=ago_s)).isoformat(),
        "detail": detail,
    }


def test_the_journey_moves_along_the_figure() -> None:
    steps = [
        ev("alpha.test", "submission", "accepted", streams=[OUTBOUND]),
        ev("alpha.test", "relay", "mx-lookup", domain="beta.test"),
        ev("alpha.test", "relay", "attempt", domain="beta.test", reply="250 2.0.0 queued"),
        ev("beta.test", "mx", "accepted", streams=[LOCAL_DELIVERY]),
        ev("beta.test", "delivery", "stored", file="1.M1"),
        ev("beta.test", "pop3", "listed"),
        ev("beta.test", "pop3", "retrieved"),
    ]
    hops = [(h.source, h.target, h.kind) for h in (hop_of(e, SITES) for e in steps)]
    assert hops == [
        ("alpha.test/client", "alpha.test/submission", "move"),
        ("alpha.test/relay", DNS, "move"),
        ("alpha.test/relay", "beta.test/mx", "move"),
        ("beta.test/mx", "beta.test/delivery", "move"),
        ("beta.test/delivery", "beta.test/mailbox", "move"),
        ("beta.test/mailbox", "beta.test/pop3", "move"),
        ("beta.test/pop3", "beta.test/client", "move"),
    ]


def test_a_4xx_reply_a_dns_error_and_a_deferral_are_trouble() -> None:
    assert (
        hop_of(ev("alpha.test", "relay", "attempt", domain="beta.test", reply="451 4.3.0 later"), SITES).kind
        == "trouble"
    )
    assert (
        hop_of(ev("alpha.test", "relay", "mx-lookup", domain="beta.test", error="SERVFAIL"), SITES).kind
        == "trouble"
    )
    deferred = hop_of(ev("alpha.test", "relay", "deferred"), SITES)
    assert (deferred.source, deferred.target, deferred.kind) == (
        "alpha.test/relay",
        "alpha.test/relay",
        "trouble",
    )


def test_mail_to_a_domain_outside_the_lab_stays_at_the_relay() -> None:
    hop = hop_of(ev("alpha.test", "relay", "attempt", domain="down.test"), SITES)
    assert hop.source == hop.target == "alpha.test/relay"


def test_the_mailbox_holds_what_was_stored_and_not_yet_retrieved() -> None:
    # The one figure of the map that comes from the trace (no metric counts a Maildir): rates.py has the rest.
    stats = HopStats(SITES)
    stats.observe(ev("beta.test", "mx", "accepted", queue_id="q2", streams=[LOCAL_DELIVERY]))
    assert stats.snapshot() == {"alpha.test/mailbox": 0, "beta.test/mailbox": 0}
    stats.observe(ev("beta.test", "delivery", "stored", queue_id="q2"))
    stats.observe(ev("beta.test", "delivery", "stored", queue_id="q3", message_id="<m3@alpha.test>"))
    assert stats.snapshot()["beta.test/mailbox"] == 2
    stats.observe(ev("beta.test", "pop3", "retrieved", queue_id="q2"))
    assert stats.snapshot() == {"alpha.test/mailbox": 0, "beta.test/mailbox": 1}


def test_depth_is_bounded() -> None:
    stats = HopStats(SITES)
    for i in range(20_050):
        stats.observe(ev("alpha.test", "delivery", "stored", message_id=f"<m{i}@alpha.test>"))
    assert stats.snapshot()["alpha.test/mailbox"] == 10_000
