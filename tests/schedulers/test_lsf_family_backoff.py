"""Poll back-off: ~20 s start, grows, caps at ~3 min, jitter, resets when a state changes."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from xdimo.schedulers.backoff import PollBackoff


def _quiet(jitter: float = 0.0) -> PollBackoff:
    return PollBackoff(jitter=jitter, rng=random.Random(1))


def test_grows_from_start_to_cap() -> None:
    b = _quiet()
    delays = [b.next_delay({"1": "RUN"}) for _ in range(12)]
    assert delays[0] == 20.0 and delays[1] == 30.0
    assert all(a <= b_ for a, b_ in zip(delays, delays[1:], strict=False))
    assert delays[-1] == 180.0


def test_resets_when_a_state_changes() -> None:
    b = _quiet()
    for _ in range(6):
        b.next_delay({"1": "RUN", "2": "PEND"})
    assert b.base_delay() > 100
    assert b.next_delay({"1": "RUN", "2": "RUN"}) == 20.0
    assert b.next_delay({"1": "RUN", "2": "RUN"}) == 30.0


def test_new_job_counts_as_a_change() -> None:
    b = _quiet()
    b.next_delay({"1": "RUN"})
    b.next_delay({"1": "RUN"})
    assert b.next_delay({"1": "RUN", "2": "PEND"}) == 20.0


@given(st.lists(st.sampled_from(["PEND", "RUN", "DONE"]), min_size=1, max_size=40), st.integers(0, 2**32))
def test_delay_always_within_jittered_bounds(states: list[str], seed: int) -> None:
    b = PollBackoff(rng=random.Random(seed))
    for s in states:
        d = b.next_delay({"1": s})
        assert 20.0 * 0.9 <= d <= 180.0 * 1.1
