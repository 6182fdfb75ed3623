"""Steady state, speedup and efficiency: the arithmetic behind every table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.collect.helpers import record
from xdimo.collect.derive import baselines, steady, throughput, wall_time
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.hardware_label import hardware_label

rates = st.lists(st.floats(min_value=0.01, max_value=1e4, allow_nan=False), min_size=1, max_size=60)


def test_warmup_flags_are_excluded_and_the_median_taken() -> None:
    s = steady.steady_state([0.1, 0.2, 1.0, 1.1, 0.9, 5.0, 1.0], [True, True, False, False, False, False, False])
    assert s is not None and s.warmup == 2 and s.intervals == 5
    assert s.steps_per_s == pytest.approx(1.0)  # the 5.0 outlier does not move the median


def test_without_flags_the_first_intervals_are_warmup() -> None:
    s = steady.steady_state([0.3] + [1.0] * 19)
    assert s is not None and s.warmup == 2 and s.steps_per_s == 1.0
    assert steady.steady_state([0.5, 1.0]).warmup == 1  # type: ignore[union-attr]
    assert steady.steady_state([1.0]).intervals == 1  # type: ignore[union-attr]
    assert steady.steady_state([]) is None and steady.steady_state([None, 0.0]) is None


def test_all_warmup_keeps_the_last_interval() -> None:
    s = steady.steady_state([0.5, 0.8], [True, True])
    assert s is not None and s.steps_per_s == 0.8 and s.intervals == 1


def test_wide_spread_is_flagged() -> None:
    jittery = steady.steady_state([1.0, 0.6, 1.4] * 5, [False] * 15)
    calm = steady.steady_state([1.0, 0.99, 1.01] * 5, [False] * 15)
    assert jittery is not None and jittery.spread > steady.WIDE_SPREAD
    assert calm is not None and calm.spread < steady.WIDE_SPREAD


@given(rates)
def test_steady_state_properties(values: list[float]) -> None:
    s = steady.steady_state(values, [False] * len(values))
    assert s is not None
    assert min(values) <= s.steps_per_s <= max(values)
    assert s.spread >= 0
    assert s.intervals == len(values)


@given(st.floats(0.01, 100), st.sampled_from([1, 2, 4, 8, 16]), st.floats(0.1, 1.0))
def test_speedup_and_efficiency(rate1: float, gpus: int, scaling: float) -> None:
    base = record("b", 1, rate1)
    rec = record("r", gpus, rate1 * scaling)
    s = baselines.speedup(rec, base)
    assert s == pytest.approx(gpus * scaling)
    assert baselines.efficiency(rec, base) == pytest.approx(scaling)


def test_speedup_is_by_samples_not_steps() -> None:
    """Seed 000: speedup = (Bn x steps/s_n) / (B1 x steps/s_1); bigger local batch counts."""
    base = record("b", 1, 1.46, local_batch=1)
    rec = record("r", 4, 1.0, local_batch=2)
    assert baselines.speedup(rec, base) == pytest.approx(8.0 / 1.46)


def test_mfu_is_exact_and_never_clamped() -> None:
    rec = record("r", 1, 1.46, precision="tf32")
    # L/2-4E2A: 12.661 TFLOP per sample; RTX 6000 Ada TF32 dense peak 182.1
    assert throughput.mfu(rec) == pytest.approx(1.46 * 12.6608 / 182.1, rel=1e-3)
    absurd = record("x", 1, 100.0, precision="fp32")
    assert throughput.mfu(absurd) > 1  # a wrong input shows as > 100%, it is not hidden


def test_gpu_hours_and_time_for_steps() -> None:
    rec = record("r", 4, 1.15, wall_s=1800)
    assert wall_time.gpu_hours(rec) == pytest.approx(2.0)
    assert round(throughput.time_for_steps(rec, 10_000)) == 8696


def test_baseline_is_same_hardware_and_model() -> None:
    runs = RunSet.of([record("a1", 1, 1.46), record("h1", 1, 3.0, pool="gpu_h200", gpu_name="H200"),
                      record("a1-dense", 1, 2.0, moe=None), record("a4", 4, 1.15)])
    assert baselines.baseline_for(runs[3], runs).run_id == "a1"
    assert baselines.baseline_for(record("h4", 4, 2.0, pool="gpu_h200", gpu_name="H200"), runs).run_id == "h1"
    assert baselines.baseline_for(record("p4", 4, 2.0, pool="gpu_pro6000"), runs) is None


@pytest.mark.parametrize(("pool", "label"), [("gpu_6000ada", "6000ada"), ("gpu_h200", "H200"),
                                             ("gpu_pro6000", "pro6000"), ("local", "local")])
def test_hardware_label(pool: str, label: str) -> None:
    assert hardware_label(pool) == label
