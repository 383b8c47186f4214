"""The one retry policy of the relay and local delivery: schedule, jitter, lifetime, delay notice, expiry."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from shared.config.delivery import DeliverySettings
from shared.config.relay import RelaySettings
from shared.models import Envelope, RecipientState, RecipientStatus
from shared.retry_queue import RetryPolicy, expire

SCHEDULE = (60.0, 300.0, 900.0, 1800.0, 3600.0)
DAY = 86400.0


def policy(**changes: object) -> RetryPolicy:
    values: dict = {
        "schedule_s": SCHEDULE,
        "jitter": 0.0,
        "lifetime_s": 5 * DAY,
        "delay_warning_s": 4 * 3600.0,
    }
    return RetryPolicy(**{**values, **changes})


def envelope(age_s: float = 0.0, **fields: object) -> Envelope:
    received = datetime.now(UTC) - timedelta(seconds=age_s)
    values: dict = {"sender": "ann@alpha.test", "recipients": ["bob@beta.test"], "body_id": "b"}
    return Envelope(**{**values, "received_at": received, **fields})


@pytest.mark.parametrize(
    ("attempts", "wait"), [(1, 60), (2, 300), (3, 900), (4, 1800), (5, 3600), (6, 3600), (40, 3600)]
)
def test_schedule_then_its_last_wait_repeats(attempts: int, wait: float) -> None:
    assert policy().delay(attempts) == wait


def test_jitter_stays_within_bounds_and_varies() -> None:
    rng = random.Random(7)
    waits = [policy(jitter=0.1).delay(2, rng) for _ in range(200)]
    assert all(270 <= w <= 330 for w in waits)
    assert len(set(waits)) > 100


def test_a_wait_never_runs_past_the_lifetime() -> None:
    young, old = envelope(), envelope(age_s=5 * DAY - 10)
    now = datetime.now(UTC).timestamp()
    assert policy().next_due(young, 1, now) == pytest.approx(now + 60)
    assert policy().next_due(old, 5, now) == pytest.approx(policy().expires_at(old))
    assert not policy().expired(old, now) and policy().expired(old, now + 10)


def test_one_delay_notice_after_the_warning_time_never_for_a_bounce() -> None:
    now = datetime.now(UTC).timestamp()
    assert not policy().delay_notice_due(envelope(age_s=3600), now)
    assert policy().delay_notice_due(envelope(age_s=5 * 3600), now)
    assert not policy().delay_notice_due(envelope(age_s=5 * 3600, delay_notified=True), now)
    assert not policy().delay_notice_due(envelope(age_s=5 * 3600, sender=""), now)
    assert not policy(delay_warning_s=0).delay_notice_due(envelope(age_s=5 * DAY), now)


def test_expiry_keeps_the_last_temporary_status_and_error() -> None:
    deferred = [
        RecipientStatus(
            recipient="a@x.test", state=RecipientState.DEFERRED, status="4.2.2", diagnostic="mailbox full"
        ),
        RecipientStatus(
            recipient="b@x.test", state=RecipientState.DEFERRED, status="4.4.1", diagnostic="no answer"
        ),
        RecipientStatus(
            recipient="c@x.test", state=RecipientState.DEFERRED, status="4.0.0", diagnostic="451 busy"
        ),
    ]
    full, silent, vague = expire(deferred, 7)
    assert {s.state for s in (full, silent, vague)} == {RecipientState.FAILED}
    # RFC 3463 X.4.7: the actual problem's code rather than "expired"; never turned into a 5.x.x.
    assert (full.status, silent.status, vague.status) == ("4.2.2", "4.4.1", "4.4.7")
    assert full.diagnostic == "delivery time expired after 7 attempts; last error: mailbox full"
    assert "451 busy" in (vague.diagnostic or "")


def test_both_services_build_the_same_policy_from_their_settings() -> None:
    relay = RelaySettings(service_token="t").retry_policy
    delivery = DeliverySettings(service_token="t").retry_policy
    assert relay == delivery == RetryPolicy(SCHEDULE, 0.1, 5 * DAY, 4 * 3600.0)


def test_a_policy_without_waits_is_refused() -> None:
    with pytest.raises(ValueError, match="schedule"):
        policy(schedule_s=())
    with pytest.raises(ValueError, match="jitter"):
        policy(jitter=1.5)
