"""A message's journey across both sites: merged, ordered, with time between steps and its DSNs."""

from tests.unit.console.trace_events import ev
from yubin.console.timeline import dsn_queue_ids, merge, summarize, timeline


def test_both_sites_merge_in_time_order_once_each() -> None:
    alpha = [
        ev("alpha.test", "submission", "accepted", 1.0, "A1", ident="1-0"),
        ev("alpha.test", "relay", "delivered", 1.5, "A1", ident="2-0"),
    ]
    beta = [
        ev("beta.test", "mx", "accepted", 1.2, "B1", ident="1-0"),
        ev("beta.test", "delivery", "stored", 1.3, "B1", ident="2-0"),
    ]
    merged = merge(alpha, beta, alpha)  # the same events again (two queries) count once
    assert [(e["site"], e["event"]) for e in merged] == [
        ("alpha.test", "accepted"),
        ("beta.test", "accepted"),
        ("beta.test", "stored"),
        ("alpha.test", "delivered"),
    ]


def test_timeline_gives_the_time_since_the_previous_step() -> None:
    events = [
        ev("alpha.test", "submission", "accepted", 1.0, "A1"),
        ev("beta.test", "mx", "accepted", 1.25, "B1"),
    ]
    steps = timeline(events, set(), set())
    assert [s["since_previous_ms"] for s in steps] == [None, 250]


def test_the_dsn_a_message_caused_is_found_and_marked() -> None:
    bounce = ev("alpha.test", "relay", "bounce", 2.0, "A1", notice_queue_id="A2")
    notice = ev("alpha.test", "submission", "accepted", 2.1, "A2", message_id="<dsn@alpha.test>")
    assert dsn_queue_ids([bounce]) == {("alpha.test", "A2")}
    steps = timeline([bounce, notice], {"<dsn@alpha.test>"}, {"A2"})
    assert [s["dsn"] for s in steps] == [False, True]


def test_search_results_are_one_row_per_message_newest_first() -> None:
    rows = summarize(
        [
            ev(
                "alpha.test",
                "submission",
                "accepted",
                1.0,
                "A1",
                sender="alice@alpha.test",
                recipients=["bob@beta.test"],
            ),
            ev("beta.test", "mx", "accepted", 1.2, "B1"),
            ev("alpha.test", "submission", "accepted", 3.0, "A9", message_id="<m2@alpha.test>"),
        ]
    )
    assert [r["message_id"] for r in rows] == ["<m2@alpha.test>", "<m1@alpha.test>"]
    assert rows[1]["sites"] == ["alpha.test", "beta.test"]
    assert rows[1]["queue_ids"] == ["A1", "B1"]
    assert rows[1]["sender"] == "alice@alpha.test"


def test_a_dsn_found_through_the_trace_apis_link_is_marked_by_its_own_message_id() -> None:
    original = ev("alpha.test", "relay", "bounced", 2.0, "A1")
    dsn = ev("alpha.test", "relay", "dsn", 2.1, "A2", message_id="<dsn@alpha.test>", original_queue_id="A1")
    steps = timeline([original, dsn], set(), set(), {"<m1@alpha.test>"})
    assert [s["dsn"] for s in steps] == [False, True]
