"""MX ordering (RFC 5321 §5.1): preference first, equal preferences shuffled; and dropping ourselves."""

import random

from services.relay.mx import MxHost, drop_self_and_worse, order_mx


def test_sorted_by_preference() -> None:
    records = [(30, "c."), (10, "a."), (20, "b.")]
    assert order_mx(records, random.Random(1)) == [(10, "a."), (20, "b."), (30, "c.")]


def test_equal_preferences_come_in_both_orders_but_never_before_better_ones() -> None:
    records = [(10, "a."), (10, "b."), (5, "best."), (20, "worst.")]
    seen = set()
    for seed in range(50):
        ordered = order_mx(records, random.Random(seed))
        assert ordered[0] == (5, "best.") and ordered[-1] == (20, "worst.")
        seen.add(tuple(name for _, name in ordered[1:3]))
    assert seen == {("a.", "b."), ("b.", "a.")}


def test_input_is_not_modified() -> None:
    records = [(20, "b."), (10, "a.")]
    order_mx(records, random.Random(0))
    assert records == [(20, "b."), (10, "a.")]


def hosts() -> list[MxHost]:
    return [
        MxHost(10, "mx1.far.test", ["127.0.5.1"]),
        MxHost(20, "relay.alpha.test", ["127.0.5.2"]),
        MxHost(30, "mx3.far.test", ["127.0.5.3"]),
    ]


def test_we_are_not_an_mx_so_all_hosts_stay() -> None:
    assert drop_self_and_worse(hosts(), {"other.alpha.test"}, {"127.0.9.9"}) == hosts()


def test_our_name_drops_us_and_every_worse_host() -> None:
    assert drop_self_and_worse(hosts(), {"relay.alpha.test"}, set()) == hosts()[:1]


def test_our_address_counts_as_us() -> None:
    assert drop_self_and_worse(hosts(), set(), {"127.0.5.1"}) == []
