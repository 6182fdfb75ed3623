"""Properties of what collect keeps of a run's log: the latest attempt of a resumed run, and the loss curve."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.collect.read import legacy, parse

FAST = settings(max_examples=100, deadline=None)
STEPS = st.lists(st.integers(0, 60), max_size=40)


def _steps(items: list[tuple[int, int]]) -> list[int]:
    return [s for s, _ in items]


def _first(item: tuple[int, int]) -> int:
    return item[0]


def tagged(steps: list[int]) -> list[tuple[int, int]]:
    """(step, position written): the position tells which print of a step was kept."""
    return [(s, k) for k, s in enumerate(steps)]


@st.composite
def resumed_logs(draw: st.DrawFn) -> list[int]:
    """A run's steps as logged over attempts: each attempt resumes from a checkpoint at or before where the
    previous one stopped and logs on from there."""
    steps: list[int] = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, steps[-1] + 1)) if steps else draw(st.integers(0, 5))
        steps += list(range(start, start + draw(st.integers(0, 12)) * 10, 10)) if start % 10 == 0 else \
            list(range(start, start + draw(st.integers(0, 12))))
    return steps


# -- latest_attempt ------------------------------------------------------------------------------------------


@FAST
@given(STEPS)
def test_kept_steps_strictly_increase(steps: list[int]) -> None:
    kept = _steps(parse.latest_attempt(tagged(steps), step=_first).items)
    assert all(a < b for a, b in zip(kept, kept[1:], strict=False))


@FAST
@given(STEPS)
def test_an_entry_counts_iff_nothing_after_it_goes_back_to_its_step(steps: list[int]) -> None:
    """The rule as an oracle: the later attempt wins, so an entry survives unless a later one has a step <= its own."""
    items = tagged(steps)
    expected = [(s, k) for s, k in items if all(t > s for t in steps[k + 1:])]
    assert parse.latest_attempt(items, step=_first).items == expected


@FAST
@given(STEPS)
def test_latest_attempt_is_idempotent(steps: list[int]) -> None:
    once = parse.latest_attempt(tagged(steps), step=_first)
    twice = parse.latest_attempt(once.items, step=_first)
    assert twice.items == once.items and twice.dropped == 0 and not any(twice.resumed)


@FAST
@given(st.lists(st.integers(0, 10**6), max_size=40, unique=True).map(sorted))
def test_a_log_without_restarts_is_unchanged(steps: list[int]) -> None:
    items = tagged(steps)
    got = parse.latest_attempt(items, step=_first)
    assert got.items == items and got.dropped == 0 and got.resumed == [False] * len(items)


@FAST
@given(resumed_logs(), st.integers(1, 4))
def test_every_rank_printing_each_line_changes_nothing_but_which_copy_wins(steps: list[int], ranks: int) -> None:
    once = parse.latest_attempt(tagged(steps), step=_first)
    copies = parse.latest_attempt(tagged([s for s in steps for _ in range(ranks)]), step=_first)
    assert _steps(copies.items) == _steps(once.items)
    assert [k for _, k in copies.items] == [k * ranks + ranks - 1 for _, k in once.items]  # the last copy
    assert (copies.dropped, copies.resumed) == (once.dropped, once.resumed)


@FAST
@given(resumed_logs())
def test_resumed_marks_the_first_entry_of_each_attempt_that_went_back(steps: list[int]) -> None:
    """An entry is flagged when it (or the first of its run of repeats) went back below the step before it."""
    got = parse.latest_attempt(tagged(steps), step=_first)

    def went_back(k: int) -> bool:
        while k > 0 and steps[k - 1] == steps[k]:
            k -= 1
        return k > 0 and steps[k] < steps[k - 1]

    assert got.resumed == [went_back(k) for _, k in got.items]
    assert len(got.items) + got.dropped + sum(1 for a, b in zip(steps, steps[1:], strict=False) if a == b) \
        == len(steps)


@FAST
@given(st.lists(st.one_of(st.integers(0, 30), st.none(), st.booleans(), st.floats(0, 30), st.text(max_size=2)),
                max_size=30))
def test_a_step_that_is_no_int_is_no_entry(steps: list) -> None:
    objs = [{"step": s} for s in steps]
    ints = [s for s in steps if type(s) is int]
    kept = parse.series_from_objects(objs).step
    assert kept == _steps(parse.latest_attempt(tagged(ints), step=_first).items)


LATTE = "[2025-06-30 20:00:00] (step={s:07d}/epoch=0001) Train Loss: {loss}, Train Steps/Sec: 2.0"


@FAST
@given(STEPS)
def test_metrics_jsonl_and_text_logs_keep_the_same_entries(steps: list[int]) -> None:
    """The same steps logged as metrics.jsonl rows and as Latte step lines: the same steps kept, from the same
    print (the loss says which), and the text log counts as restarts what the rule calls one."""
    rows = [{"step": s, "loss": float(k)} for k, s in enumerate(steps)]
    series = parse.series_from_objects(rows)
    facts = legacy.LogFacts(key="t")
    legacy.parse_log_text("\n".join(LATTE.format(s=s, loss=float(k)) for k, s in enumerate(steps)) + "\n", facts)
    assert [iv.step for iv in facts.intervals] == series.step
    assert [iv.loss for iv in facts.intervals] == series.loss
    rule = parse.latest_attempt(tagged(steps), step=_first)
    assert [iv.after_restart for iv in facts.intervals] == rule.resumed and facts.relogged == rule.dropped


def test_a_step_logged_twice_in_a_row_is_one_interval_the_later_print_wins_on_both_paths() -> None:
    steps = [10, 20, 30, 30, 40]
    series = parse.series_from_objects([{"step": s, "loss": float(k)} for k, s in enumerate(steps)])
    assert (series.step, series.loss) == ([10, 20, 30, 40], [0.0, 1.0, 3.0, 4.0])
    facts = legacy.LogFacts(key="t")
    legacy.parse_log_text("\n".join(LATTE.format(s=s, loss=float(k)) for k, s in enumerate(steps)), facts)
    assert [(iv.step, iv.loss, iv.after_restart) for iv in facts.intervals] == \
        [(10, 0.0, False), (20, 1.0, False), (30, 3.0, False), (40, 4.0, False)]
    assert facts.relogged == 0


def test_metrics_jsonl_read_from_disk_follows_the_rule(tmp_path) -> None:
    steps = [10, 20, 30, 20, 20, 30]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": float(k)}) + "\n"
                                                    for k, s in enumerate(steps)))
    series = parse.read_metrics(tmp_path / "metrics.jsonl")
    assert (series.step, series.loss) == ([10, 20, 30], [0.0, 4.0, 5.0])


# -- downsample ----------------------------------------------------------------------------------------------

VALUE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.none(), st.booleans(),
                  st.just("x"))


@st.composite
def curves(draw: st.DrawFn) -> tuple[list[int], list]:
    steps = sorted(draw(st.lists(st.integers(0, 10**6), max_size=300, unique=True)))
    return steps, draw(st.lists(VALUE, min_size=len(steps), max_size=len(steps)))


def _numeric(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


@FAST
@given(curves(), st.integers(0, 120))
def test_downsample_keeps_at_most_limit_points_first_and_last(curve: tuple[list[int], list], limit: int) -> None:
    steps, values = curve
    pts = parse.downsample(steps, values, limit=limit)
    numeric = [(s, v) for s, v in zip(steps, values, strict=True) if _numeric(v)]
    assert len(pts) == min(len(numeric), limit)
    assert all(p in numeric for p in pts) and all(_numeric(v) for _, v in pts)
    kept = [s for s, _ in pts]
    assert all(a < b for a, b in zip(kept, kept[1:], strict=False))
    if pts:
        assert pts[-1] == numeric[-1]
        if limit >= 2:
            assert pts[0] == numeric[0]


def test_downsample_to_no_points_is_no_points_not_a_crash() -> None:
    assert parse.downsample([1, 2, 3], [1.0, 2.0, 3.0], limit=0) == []
    assert parse.downsample([1, 2, 3], [1.0, 2.0, 3.0], limit=1) == [(3, 3.0)]
