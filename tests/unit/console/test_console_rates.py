"""The map's rates and depths from /metrics texts: counter deltas over the window, restarts, replicas summed,
the site's queue gauges, and the hop each counter measures."""

import pytest

from yubin.console.hops import DNS
from yubin.console.rates import Rates, Scraped, increase, parse

SITES = ["alpha.test", "beta.test"]


def relay_text(delivered: float, deferred: float = 0, lookups: float = 0) -> str:
    return f"""# HELP yubin_relay_attempts_total Delivery attempts.
# TYPE yubin_relay_attempts_total counter
yubin_relay_attempts_total{{result="delivered"}} {delivered}
yubin_relay_attempts_total{{result="deferred"}} {deferred}
yubin_relay_attempts_total{{result="bounced"}} 0.0
# HELP yubin_relay_mx_lookups_total MX lookups.
# TYPE yubin_relay_mx_lookups_total counter
yubin_relay_mx_lookups_total{{result="ok"}} {lookups}
yubin_relay_mx_lookups_total{{result="failed"}} 0.0
# HELP process_cpu_seconds_total CPU.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
"""


def smtpd_text(role: str, accepted: float) -> str:
    return f"""# HELP yubin_smtpd_messages_accepted_total Messages accepted.
# TYPE yubin_smtpd_messages_accepted_total counter
yubin_smtpd_messages_accepted_total{{role="{role}"}} {accepted}
# HELP yubin_smtpd_sessions Sessions open now.
# TYPE yubin_smtpd_sessions gauge
yubin_smtpd_sessions{{role="{role}"}} 3.0
"""


def auth_text(outbound: int, relay_retry: int, local: int = 0, dead: int = 0, up: int = 1) -> str:
    if not up:
        return "# HELP yubin_queue_redis_up Redis.\n# TYPE yubin_queue_redis_up gauge\nyubin_queue_redis_up 0.0\n"
    return f"""# HELP yubin_queue_redis_up Redis.
# TYPE yubin_queue_redis_up gauge
yubin_queue_redis_up 1.0
# HELP yubin_queue_depth Entries.
# TYPE yubin_queue_depth gauge
yubin_queue_depth{{stream="outbound"}} {outbound}
yubin_queue_depth{{stream="local"}} {local}
# HELP yubin_queue_pending Pending.
# TYPE yubin_queue_pending gauge
yubin_queue_pending{{group="relay",stream="outbound"}} 1.0
# HELP yubin_queue_oldest_age_seconds Age.
# TYPE yubin_queue_oldest_age_seconds gauge
yubin_queue_oldest_age_seconds{{stream="outbound"}} 4.5
yubin_queue_oldest_age_seconds{{stream="local"}} 0.0
# HELP yubin_retry_queue_size Deferred.
# TYPE yubin_retry_queue_size gauge
yubin_retry_queue_size{{queue="relay"}} {relay_retry}
yubin_retry_queue_size{{queue="delivery"}} 0.0
# HELP yubin_dead_letters Dead letters.
# TYPE yubin_dead_letters gauge
yubin_dead_letters {dead}
"""


def relay(instance: str, *args: float, site: str = "alpha.test") -> Scraped:
    return Scraped(site, instance, relay_text(*args))


def test_each_hop_reads_the_counter_that_measures_it() -> None:
    totals, gauges = parse(relay_text(5, 2, 3) + smtpd_text("submission", 7))
    assert totals == {"relay": 7.0, DNS: 3.0, "submission": 7.0, "mx": 0.0}
    assert gauges is None  # no queue gauges in a relay's or submission's text
    totals, _ = parse(smtpd_text("mx", 4))
    assert totals == {"mx": 4.0, "submission": 0.0}  # the same counter, another role


@pytest.mark.parametrize(
    ("previous", "current", "grown"),
    [(None, 100.0, 0.0), (10.0, 13.0, 3.0), (10.0, 10.0, 0.0), (500.0, 2.0, 2.0), (500.0, 0.0, 0.0)],
)
def test_an_increase_is_never_negative_and_a_restart_counts_from_zero(previous, current, grown) -> None:
    assert increase(previous, current) == grown


def test_the_rate_is_the_counter_delta_over_the_window_per_minute() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 1000)])  # the baseline: a day of traffic is not this minute's rate
    assert rates.snapshot(0.0)["alpha.test/relay"]["rate"] is None
    rates.round(30.0, [relay("r0", 1000)])
    assert rates.snapshot(30.0)["alpha.test/relay"] == {"rate": 0.0, "count": 0, "depth": None}
    rates.round(60.0, [relay("r0", 1006)])
    assert rates.snapshot(60.0)["alpha.test/relay"]["count"] == 6
    assert rates.snapshot(60.0)["alpha.test/relay"]["rate"] == 6.0  # six in the last minute
    rates.round(90.0, [relay("r0", 1009)])
    assert rates.snapshot(90.0)["alpha.test/relay"]["count"] == 9
    rates.round(125.0, [relay("r0", 1009)])  # the six of t=60 left the window
    assert rates.snapshot(125.0)["alpha.test/relay"]["count"] == 3
    rates.round(200.0, [relay("r0", 1009)])
    assert rates.snapshot(200.0)["alpha.test/relay"] == {"rate": 0.0, "count": 0, "depth": None}


def test_a_series_that_appears_after_the_baseline_counted_from_zero() -> None:
    # The SMTP listener creates its `role` series at the first message, not at start.
    rates = Rates(SITES, window_s=60)
    empty = "# HELP yubin_smtpd_messages_accepted_total Messages.\n# TYPE yubin_smtpd_messages_accepted_total counter\n"
    rates.round(0.0, [Scraped("alpha.test", "s0", empty)])
    assert rates.snapshot(0.0)["alpha.test/submission"]["rate"] is None  # no history yet
    rates.round(1.5, [Scraped("alpha.test", "s0", empty)])
    assert rates.snapshot(1.5)["alpha.test/submission"]["rate"] == 0.0  # measured: nothing yet
    rates.round(3.0, [Scraped("alpha.test", "s0", smtpd_text("submission", 1))])
    assert rates.snapshot(3.0)["alpha.test/submission"]["count"] == 1


def test_a_short_history_is_scaled_to_a_minute() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 0)])
    rates.round(15.0, [relay("r0", 2)])
    assert rates.snapshot(15.0)["alpha.test/relay"]["rate"] == 8.0  # 2 in 15 s


def test_a_restarted_process_adds_what_it_counted_since_not_a_negative_or_huge_rate() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 50_000)])
    rates.round(3.0, [relay("r0", 50_004)])
    rates.round(6.0, [relay("r0", 1)])  # killed and restarted: its counters began again at 0
    assert rates.snapshot(6.0)["alpha.test/relay"]["count"] == 5
    rates.round(9.0, [relay("r0", 3)])
    stats = rates.snapshot(9.0)["alpha.test/relay"]
    assert stats["count"] == 7
    assert stats["rate"] == round(7 * 60 / 9, 1)


def test_replicas_are_summed_and_each_is_its_own_baseline() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 10), relay("r1", 400)])
    rates.round(3.0, [relay("r0", 12), relay("r1", 403), relay("r2", 900)])  # r2: scaled up just now
    assert rates.snapshot(3.0)["alpha.test/relay"]["count"] == 5
    rates.round(6.0, [relay("r0", 13), relay("r1", 403), relay("r2", 901)])
    assert rates.snapshot(6.0)["alpha.test/relay"]["count"] == 7
    # The other site's relay is another node; the DNS node is shared by both sites' relays.
    rates.round(9.0, [relay("r0", 13, 0, 1), relay("b0", 5, 0, 7, site="beta.test")])
    rates.round(12.0, [relay("r0", 13, 0, 2), relay("b0", 6, 0, 9, site="beta.test")])
    stats = rates.snapshot(12.0)
    assert stats["beta.test/relay"]["count"] == 1
    assert stats[DNS]["count"] == 2 + 2  # alpha's r0: 0 → 1 → 2; beta's b0: 7 (its baseline) → 9


def test_a_process_that_stopped_answering_is_forgotten_and_starts_again_from_a_baseline() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 10)])
    rates.round(3.0, [Scraped("alpha.test", "r0", error="ConnectError")])
    assert rates.snapshot(3.0)["alpha.test"]["targets"] == {"up": 0, "down": 1}
    for at in range(6, 70, 3):
        rates.round(float(at), [Scraped("alpha.test", "r0", error="ConnectError")])
    rates.round(70.0, [relay("r0", 9_000)])
    assert rates.snapshot(70.0)["alpha.test/relay"]["count"] == 0


def test_depth_is_the_site_queue_gauges_once_however_many_auth_replicas_export_them() -> None:
    rates = Rates(SITES, window_s=60)
    auth = auth_text(outbound=2, relay_retry=3, local=1, dead=4)
    rates.round(0.0, [Scraped("alpha.test", "a0", auth), Scraped("alpha.test", "a1", auth)])
    stats = rates.snapshot(0.0)
    assert stats["alpha.test/relay"]["depth"] == 5
    assert stats["alpha.test/relay"]["retry"] == 3
    assert stats["alpha.test/relay"]["oldest_s"] == 4.5
    assert stats["alpha.test/delivery"]["depth"] == 1
    assert stats["alpha.test"]["dead_letters"] == 4
    assert stats["alpha.test"]["targets"] == {"up": 2, "down": 0}
    assert stats["beta.test/relay"]["depth"] is None  # nothing exports beta's queues here
    rates.round(3.0, [Scraped("alpha.test", "a0", auth_text(0, 0, up=0))])  # Redis did not answer
    assert rates.snapshot(3.0)["alpha.test/relay"]["depth"] is None


def test_a_hop_no_scraped_process_measures_has_no_rate() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 1)])
    rates.round(3.0, [relay("r0", 2)])
    stats = rates.snapshot(3.0)
    assert stats["alpha.test/pop3"]["rate"] is None
    assert stats["alpha.test/client"]["rate"] is None


def test_an_answer_that_is_not_metrics_is_an_error_of_its_target() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [Scraped("alpha.test", "x", "<html>not metrics{</html>\n")])
    assert rates.snapshot(0.0)["alpha.test"]["targets"] == {"up": 0, "down": 1}
    assert "x" in rates.errors


def test_values_no_counter_can_have_are_left_out() -> None:
    rates = Rates(SITES, window_s=60)
    rates.round(0.0, [relay("r0", 5)])
    rates.round(3.0, [Scraped("alpha.test", "r0", relay_text(float("inf")).replace("inf", "+Inf"))])
    rates.round(6.0, [relay("r0", -4)])
    rates.round(9.0, [relay("r0", 6)])
    stats = rates.snapshot(9.0)["alpha.test/relay"]
    assert stats["count"] == 1
