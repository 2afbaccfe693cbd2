"""The retry policy of transient failures (backoff, delay tiers, window) and the names of delay queues."""
from __future__ import annotations

import pytest

from metadata_worker.retries import RetryPolicy
from registry_shared.topology import retry_queue

DEFAULT = RetryPolicy.from_seconds(1, 300, 3600)  # the settings' defaults


@pytest.mark.parametrize(("retries", "delay_ms"), [(0, 1000), (1, 2000), (2, 4000), (8, 256_000), (9, 300_000),
                                                   (50, 300_000), (10**6, 300_000), (-1, 1000)])
def test_delay_doubles_from_the_first_up_to_the_cap(retries: int, delay_ms: int) -> None:
    assert DEFAULT.delay_ms(retries) == delay_ms


def test_one_delay_queue_per_possible_delay() -> None:
    assert DEFAULT.tiers_ms() == (1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000)
    assert RetryPolicy.from_seconds(0.2, 0.2, 1).tiers_ms() == (200,)
    assert RetryPolicy.from_seconds(5, 1, 60).tiers_ms() == (5000,)  # a cap below the first delay: no doubling


def test_no_first_delay_means_straight_back_to_the_work_queue() -> None:
    policy = RetryPolicy.from_seconds(0, 300, 3600)
    assert policy.delay_ms(0) == policy.delay_ms(5) == 0 and policy.tiers_ms() == ()


def test_an_hour_of_outage_is_retried_with_backoff_then_given_up() -> None:
    elapsed = retries = 0
    while not DEFAULT.exhausted(0, elapsed):
        elapsed += DEFAULT.delay_ms(retries)
        retries += 1
    assert 3_600_000 <= elapsed < 3_600_000 + 300_000
    assert retries == 20  # 9 doublings, then every 5 minutes


@pytest.mark.parametrize(("now_ms", "exhausted"), [(0, False), (3_599_999, False), (3_600_000, True)])
def test_window_runs_from_the_first_failure(now_ms: int, exhausted: bool) -> None:
    assert DEFAULT.exhausted(0, now_ms) is exhausted
    assert RetryPolicy.from_seconds(1, 300, 0).exhausted(now_ms, now_ms)  # no window: no retry at all


@pytest.mark.parametrize(("delay_ms", "name"), [(200, "q.retry.0.2"), (1000, "q.retry.1"), (1600, "q.retry.1.6"),
                                                (300_000, "q.retry.300"), (1_234_567, "q.retry.1234.567")])
def test_delay_queues_are_named_by_their_delay_in_seconds(delay_ms: int, name: str) -> None:
    assert retry_queue("q", delay_ms) == name
