"""The retry policy: backoff with and without jitter, Retry-After honoured or capped, never past the deadline."""

from __future__ import annotations

import random

from service_common.retry import RetryPolicy


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=5, backoff_s=1, backoff_max_s=3)
    highs = [max(policy.backoff(n, random.Random(seed)) for seed in range(200)) for n in (1, 2, 3, 4)]
    assert 0.9 < highs[0] <= 1 and 1.9 < highs[1] <= 2 and 2.9 < highs[2] <= 3 and highs[3] <= 3


def test_retry_delay_honours_retry_after_and_never_passes_the_deadline() -> None:
    policy = RetryPolicy(attempts=3, backoff_s=0, retry_after_max_s=10)
    rng = random.Random(1)
    assert policy.delay(1, retry_after=2, left=5, rng=rng) == 2
    assert policy.delay(1, retry_after=6, left=5, rng=rng) is None  # would end past the deadline
    assert policy.delay(1, retry_after=11, left=60, rng=rng) is None  # longer than we are willing to wait
    assert policy.delay(3, retry_after=None, left=60, rng=rng) is None  # no try left
    assert policy.delay(2, retry_after=None, left=60, rng=rng) == 0


def test_without_jitter_the_backoff_doubles_and_a_long_retry_after_may_be_capped() -> None:
    policy = RetryPolicy(attempts=4, backoff_s=0.5, backoff_max_s=3, retry_after_max_s=3, jitter=False,
                         cap_retry_after=True)
    rng = random.Random(1)
    assert [policy.delay(n, retry_after=None, left=60, rng=rng) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.delay(1, retry_after=60, left=60, rng=rng) == 3  # capped, not given up
