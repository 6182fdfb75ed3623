"""Properties of a run's identity (xdimo/spec.py): the run id ignores the fields NOT_IDENTITY names, changes with
every other field, and survives to_dict/from_dict; parse_moe reads back every NEkA it accepts and refuses the rest
with ValueError only."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.spec import MAX_EXPERTS, NOT_IDENTITY, PARALLEL_CHOICES, PRECISION_CHOICES, RunSpec, parse_moe

FAST = settings(max_examples=150, deadline=None)
WORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
# One strategy per RunSpec field; a test below fails if RunSpec gains a field this table does not know.
FIELD_VALUES: dict[str, st.SearchStrategy] = {
    "matrix": WORD, "pool": WORD, "model": WORD,
    "moe": st.one_of(st.none(), st.builds(lambda n, k: f"{n}E{min(k, n)}A", st.integers(1, 64), st.integers(1, 64))),
    "gpus": st.integers(1, 64), "cpus": st.one_of(st.none(), st.integers(1, 512)), "nodes": st.integers(1, 8),
    "parallel": st.sampled_from(PARALLEL_CHOICES), "local_batch": st.integers(1, 64), "grad_accum": st.integers(1, 8),
    "steps": st.integers(1, 10**6), "precision": st.sampled_from(PRECISION_CHOICES), "data": WORD,
    "frames": st.integers(1, 64), "image_size": st.integers(8, 1024), "log_every": st.integers(1, 1000),
    "command": st.one_of(st.none(), WORD), "env": st.lists(WORD, max_size=3).map(tuple),
    "train_args": st.lists(st.tuples(WORD, WORD), max_size=3).map(tuple),
    "walltime_min": st.one_of(st.none(), st.integers(1, 10**5)), "label": st.text(max_size=20),
    "model_given": st.booleans(),
}
FIELDS = [f.name for f in dataclasses.fields(RunSpec)]
IDENTITY = [name for name in FIELDS if name not in NOT_IDENTITY]


def test_every_field_has_a_strategy_and_not_identity_names_real_fields() -> None:
    assert set(FIELD_VALUES) == set(FIELDS)
    assert set(NOT_IDENTITY) <= set(FIELDS) and IDENTITY


specs = st.fixed_dictionaries(FIELD_VALUES).map(lambda kw: RunSpec(**kw))


@FAST
@given(specs, st.sampled_from(NOT_IDENTITY), st.data())
def test_the_run_id_ignores_the_fields_that_are_not_identity(spec: RunSpec, name: str, data: st.DataObject) -> None:
    other = dataclasses.replace(spec, **{name: data.draw(FIELD_VALUES[name])})
    assert other.run_id == spec.run_id and other == spec


@FAST
@given(specs, st.sampled_from(IDENTITY), st.data())
def test_the_run_id_changes_with_every_identity_field(spec: RunSpec, name: str, data: st.DataObject) -> None:
    value = data.draw(FIELD_VALUES[name].filter(lambda v: v != getattr(spec, name)))
    other = dataclasses.replace(spec, **{name: value})
    assert other.run_id != spec.run_id and other != spec
    assert other.run_id.startswith(f"{other.matrix}-")


@FAST
@given(specs)
def test_the_run_id_survives_a_round_trip_through_its_dict(spec: RunSpec) -> None:
    back = RunSpec.from_dict(spec.to_dict())
    assert back == spec and back.run_id == spec.run_id and (back.label, back.model_given) == (spec.label,
                                                                                             spec.model_given)
    assert re.fullmatch(r"[0-9a-f]{8}", spec.digest())


@FAST
@given(st.integers(1, MAX_EXPERTS), st.integers(1, MAX_EXPERTS))
def test_parse_moe_reads_back_every_layout_it_accepts(n: int, k: int) -> None:
    text = f"{n}E{k}A"
    if k <= n:
        assert parse_moe(text) == (n, k)
    else:
        with pytest.raises(ValueError, match="activates more experts"):
            parse_moe(text)


@FAST
@given(st.integers(MAX_EXPERTS + 1, 10**6), st.integers(1, 10))
def test_parse_moe_refuses_more_than_max_experts(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="more than"):
        parse_moe(f"{n}E{k}A")


@FAST
@given(st.one_of(st.text(max_size=12), st.from_regex(r"[0-9]{0,4}[Ee][0-9]{0,4}[Aa]?\s?", fullmatch=True)))
@example("1E1A\n")  # `$` let a trailing newline by, so a matrix's "4E2A\n" was a layout of its own
def test_parse_moe_of_any_text_is_a_valid_layout_or_a_value_error(text: str) -> None:
    try:
        got = parse_moe(text)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    assert got is not None
    n, k = got
    assert 1 <= k <= n <= MAX_EXPERTS and text == f"{n}E{k}A"  # only the canonical spelling is accepted


def test_parse_moe_of_none_is_dense() -> None:
    assert parse_moe(None) is None
