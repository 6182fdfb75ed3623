"""Properties of load_matrix on generated matrix files: one run per combination of the axes plus each extra run,
run ids unique and independent of how the YAML orders its keys."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.matrix import load_matrix

FAST = settings(max_examples=100, deadline=None)

# Keys a matrix may sweep, each with values that make valid runs of the default model (Latte-S/2, 16 x 256).
AXIS_VALUES = {
    "gpus": st.integers(1, 64),
    "local_batch": st.integers(1, 32),
    "grad_accum": st.integers(1, 8),
    "steps": st.integers(1, 4999),  # extra runs take their steps from 5000 up, so they never repeat a row
    "log_every": st.integers(1, 100),
    "cpus": st.integers(1, 256),
    "walltime_min": st.integers(1, 10_000),
    "precision": st.sampled_from(["bf16", "tf32", "fp32"]),
    "parallel": st.sampled_from(["single", "ddp", "fsdp"]),
    "data": st.from_regex(r"[a-z][a-z0-9_/]{0,8}", fullmatch=True),
    "pool": st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
}
LABEL = st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,10}", fullmatch=True)


@st.composite
def matrices(draw: st.DrawFn) -> dict:
    keys = draw(st.lists(st.sampled_from(sorted(AXIS_VALUES)), max_size=3, unique=True))
    axes = {k: draw(st.lists(AXIS_VALUES[k], min_size=1, max_size=3, unique=True)) for k in keys}
    defaults = {"pool": "gpu_a"}
    for k in draw(st.lists(st.sampled_from(sorted(AXIS_VALUES)), max_size=3, unique=True)):
        defaults[k] = draw(AXIS_VALUES[k])
    if draw(st.booleans()):
        defaults["label"] = draw(LABEL)
    extra = [{"steps": s, **({"label": draw(LABEL)} if draw(st.booleans()) else {})}
             for s in draw(st.lists(st.integers(5000, 10**6), max_size=3, unique=True))]
    if not axes and not extra:
        extra = [{"steps": 5000}]
    data: dict = {"name": "props", "defaults": defaults}
    if axes:
        data["matrix"] = axes
    if extra:
        data["runs"] = extra
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def reorder(data: dict, rng: st.DataObject) -> dict:
    """The same matrix, every mapping's keys (top level, defaults, axes, each run) in another order."""
    def shuffle(m: dict) -> dict:
        keys = rng.draw(st.permutations(list(m)))
        return {k: m[k] for k in keys}

    out = shuffle(data)
    for key in ("defaults", "matrix"):
        if key in out:
            out[key] = shuffle(out[key])
    if "runs" in out:
        out["runs"] = [shuffle(r) for r in out["runs"]]
    return out


@FAST
@given(matrices())
def test_one_run_per_combination_plus_each_extra_run(tmp_path_factory, data: dict) -> None:
    m = load_matrix(write(tmp_path_factory.mktemp("m") / "props.yaml", data))
    axes = data.get("matrix", {})
    n_extra = len(data.get("runs", []))
    assert len(m.runs) == (math.prod(len(v) for v in axes.values()) if axes else 0) + n_extra
    ids = [r.run_id for r in m.runs]
    assert len(set(ids)) == len(ids)
    keys = list(axes)
    combos = {tuple(getattr(r, k) for k in keys) for r in m.runs[:len(m.runs) - n_extra]}
    assert combos == (set(itertools.product(*axes.values())) if axes else set())
    for run, extra in zip(m.runs[len(m.runs) - n_extra:], data.get("runs", []), strict=True):
        assert run.steps == extra["steps"]
    for k, v in data["defaults"].items():  # a default holds wherever neither an axis nor the run sets the key
        if k not in axes and k != "label":
            assert all(getattr(r, k) == v for r in m.runs if k != "steps" or r in m.runs[:len(m.runs) - n_extra])


@FAST
@given(matrices(), st.data())
def test_run_ids_do_not_depend_on_key_order(tmp_path_factory, data: dict, rng: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("m")
    one = load_matrix(write(folder / "props.yaml", data))
    (folder / "again").mkdir()
    two = load_matrix(write(folder / "again" / "props.yaml", reorder(data, rng)))
    assert sorted(r.run_id for r in one.runs) == sorted(r.run_id for r in two.runs)
    assert set(one.runs) == set(two.runs)


@FAST
@given(matrices(), LABEL)
def test_a_label_is_no_part_of_a_run_id(tmp_path_factory, data: dict, label: str) -> None:
    folder = tmp_path_factory.mktemp("m")
    one = load_matrix(write(folder / "props.yaml", data))
    relabelled = {**data, "defaults": {**data["defaults"], "label": label}}
    (folder / "again").mkdir()
    two = load_matrix(write(folder / "again" / "props.yaml", relabelled))
    assert [r.run_id for r in one.runs] == [r.run_id for r in two.runs]
