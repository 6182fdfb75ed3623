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


def test_all_warmup_is_no_steady_state() -> None:
    """Every interval warm-up: the last one kept only as a reading marked warm-up only, never a steady figure."""
    s = steady.steady_state([0.5, 0.8], [True, True], mem_peak_gib=[30.0, 20.0])
    assert s is not None and s.warmup_only and s.steps_per_s == 0.8
    assert s.intervals == 0 and s.warmup == 2 and s.spread is None  # what it is: 2 warm-up intervals, no spread
    assert s.mem_peak_gib == 30.0  # memory is real whatever the interval
    rec = record("w", 1, 1.0)
    rec.steady = s
    assert steady.warmup_only(rec) and not steady.has_steady(rec) and rec.has_metrics
    assert throughput.samples_per_s(rec) is None and throughput.mfu(rec) is None
    assert throughput.time_for_steps(rec, 10_000) is None and throughput.tokens_per_s(rec, 4096) is None
    assert not steady.wide_spread(rec) and steady.spread_text(rec) == "—"


def test_one_steady_interval_has_no_spread() -> None:
    s = steady.steady_state([0.5, 0.8], [True, False])
    assert s is not None and not s.warmup_only and s.intervals == 1 and s.warmup == 1 and s.spread is None
    assert steady.steady_state([0.5, 0.8, 0.9], [True, False, False]).spread is not None  # type: ignore[union-attr]


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
    assert (s.spread is None) if len(values) == 1 else s.spread >= 0  # one interval: the spread is unknown
    assert s.intervals == len(values)


@given(st.floats(0.01, 100), st.sampled_from([2, 4, 8, 16]), st.floats(0.1, 1.0))
def test_speedup_and_efficiency(rate1: float, gpus: int, scaling: float) -> None:
    base = record("b", 1, rate1)
    rec = record("r", gpus, rate1 * scaling)
    s = baselines.speedup(rec, base)
    assert s == pytest.approx(gpus * scaling)
    assert baselines.efficiency(rec, base) == pytest.approx(scaling)
    assert baselines.efficiency(base, base) == pytest.approx(1.0)
    rerun = record("b2", 1, rate1 * scaling)  # another 1-card run: no scaling point, no efficiency
    assert not baselines.scaling_point(rerun, base) and baselines.efficiency(rerun, base) is None


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
    assert baselines.baseline_for(record("p4", 4, 2.0, pool="gpu_pro6000", gpu_name="RTX PRO 6000"), runs) is None


@pytest.mark.parametrize(("pool", "label"), [("gpu_6000ada", "6000ada"), ("gpu_h200", "H200"),
                                             ("gpu_pro6000", "pro6000"), ("local", "local")])
def test_hardware_label(pool: str, label: str) -> None:
    assert hardware_label(pool) == label
