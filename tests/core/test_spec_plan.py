from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.config import Cluster, Pool
from xdimo.errors import ConfigError, RuleError
from xdimo.matrix import load_matrix
from xdimo.plan import check_matrix, choose_batch, waves
from xdimo.rules import check_run, cpu_slots, pending_room
from xdimo.spec import RunSpec, parse_moe

REPO = Path(__file__).resolve().parents[2]
JH = Cluster(name="jh", scheduler="jh", cpu_per_gpu=8, max_pending=1, pools={
    "gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8),
    "gpu_h200": Pool("gpu_h200", "H200", 5),
    "gpu_pro6000": Pool("gpu_pro6000", "RTX PRO 6000", 8, taken=1),
})


def write(tmp_path: Path, data: object, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_run_id_is_a_hash_of_the_spec_and_label_is_not_identity():
    a = RunSpec(matrix="m", pool="p", gpus=2)
    assert a.run_id == RunSpec(matrix="m", pool="p", gpus=2, label="x").run_id
    assert a.run_id != RunSpec(matrix="m", pool="p", gpus=4).run_id
    assert a.run_id.startswith("m-") and len(a.digest()) == 8
    assert RunSpec.from_dict(a.to_dict()) == a


def test_moe_parsing():
    assert parse_moe("4E2A") == (4, 2) and parse_moe(None) is None
    for bad in ("4E5A", "E2A", "4x2", "0E0A"):
        with pytest.raises(ValueError):
            parse_moe(bad)


def test_shipped_matrices_expand_as_the_seeds_describe():
    t1 = load_matrix(REPO / "jobs" / "table1-scaling.yaml")
    assert [(s.pool, s.gpus) for s in t1.runs] == [
        ("gpu_6000ada", 1), ("gpu_6000ada", 2), ("gpu_6000ada", 4), ("gpu_6000ada", 8),
        ("gpu_h200", 1), ("gpu_h200", 2), ("gpu_h200", 4),
        ("gpu_pro6000", 1), ("gpu_pro6000", 2), ("gpu_pro6000", 4)]
    assert {s.model_name for s in t1.runs} == {"Latte-L/2-4E2A"}
    t2 = load_matrix(REPO / "jobs" / "table2-models.yaml")
    assert [s.model_name for s in t2.runs] == [
        "Latte-S/2", "Latte-B/2", "Latte-L/2", "Latte-L/2-4E2A", "Latte-L/2-2E1A",
        "Latte-XL/2", "Latte-XL/2-4E2A", "Latte-XL/2-2E1A"]
    hw = load_matrix(REPO / "jobs" / "hw-4gpu.yaml")
    assert len(hw.runs) == 6 and {s.gpus for s in hw.runs} == {4}
    for m in (t1, t2, hw):
        check_matrix(m, JH)


def test_seed_001_first_batch_is_four_that_start_plus_one_that_waits():
    hw = load_matrix(REPO / "jobs" / "hw-4gpu.yaml")
    free = {"gpu_6000ada": 8, "gpu_h200": 5, "gpu_pro6000": 7}
    batch = choose_batch(list(hw.runs), free, JH, pending_now=0)
    assert sorted(s.pool for s in batch.start) == ["gpu_6000ada", "gpu_6000ada", "gpu_h200", "gpu_pro6000"]
    assert len(batch.wait) == 1 and len(batch.held) == 1
    assert choose_batch(list(hw.runs), free, JH, pending_now=1).wait == []


def test_cpu_rule_and_fit():
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=4)
    assert cpu_slots(JH, spec) == 32
    check_run(JH, spec)
    with pytest.raises(RuleError, match="could never start"):
        check_run(JH, RunSpec(matrix="m", pool="gpu_h200", gpus=8))
    with pytest.raises(RuleError, match="only 7 usable"):
        check_run(JH, RunSpec(matrix="m", pool="gpu_pro6000", gpus=8))
    with pytest.raises(RuleError, match="site rule"):
        check_run(JH, RunSpec(matrix="m", pool="gpu_h200", gpus=4, cpus=64))
    with pytest.raises(ConfigError, match="unknown pool"):
        check_run(JH, RunSpec(matrix="m", pool="gpu_a100", gpus=1))
    assert pending_room(JH, 0) == 1 and pending_room(JH, 3) == 0


@pytest.mark.parametrize("data, message", [
    ("name: x\nmatrix: [1, 2", "malformed YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ({"matrix": {"gpus": [1]}, "defaults": {"pool": "p", "model": "Latte-Q/2"}}, "unknown model"),
    ({"matrix": {"gpus": [0]}, "defaults": {"pool": "p"}}, r"'matrix\.gpus\[0\]': expected an integer >= 1, got 0"),
    ({"matrix": {"gpus": [-2]}, "defaults": {"pool": "p"}}, r"'matrix\.gpus\[0\]': expected an integer >= 1, got -2"),
    ({"matrix": {"gpus": [1]}}, "no 'pool'"),
    ({"matrix": {"gpus": [1]}, "defaults": {"pool": "p", "colour": 1}}, "unknown key 'defaults.colour'"),
    ({"matrix": {"gpus": []}, "defaults": {"pool": "p"}}, "non-empty list"),
    ({"defaults": {"pool": "p"}}, "no runs"),
    ({"runs": [{"pool": "p", "moe": "lots"}]}, r"key 'runs\[0\]\.moe'"),
    ({"runs": [{"pool": "p", "precision": "fp8"}]}, r"key 'runs\[0\]\.precision'"),
    ({"runs": [{"pool": "p", "steps": "many"}]}, r"key 'runs\[0\]\.steps'"),
])
def test_bad_matrix_files_give_one_line_naming_file_and_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as info:
        load_matrix(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_matrix_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_matrix(tmp_path / "nope.yaml")


specs = st.builds(RunSpec, matrix=st.just("m"), pool=st.sampled_from(sorted(JH.pools)),
                  gpus=st.sampled_from([1, 2, 4]), local_batch=st.integers(1, 4), steps=st.integers(1, 50))


@settings(max_examples=200, deadline=None)
@given(st.lists(specs, max_size=20, unique_by=lambda s: s.run_id),
       st.fixed_dictionaries({p: st.integers(0, 8) for p in JH.pools}), st.integers(0, 2))
def test_batches_never_overcommit_a_pool_nor_exceed_the_pending_room(todo, free, pending_now):
    batch = choose_batch(todo, free, JH, pending_now)
    for pool, cards in free.items():
        assert sum(s.gpus for s in batch.start if s.pool == pool) <= cards
    assert len(batch.wait) <= pending_room(JH, pending_now)
    ids = [s.run_id for s in batch.start + batch.wait + batch.held]
    assert sorted(ids) == sorted(s.run_id for s in todo)  # every run placed exactly once
    # nothing held could have started on what was left free
    left = {p: free[p] - sum(s.gpus for s in batch.start if s.pool == p) for p in free}
    assert all(s.gpus > left[s.pool] for s in batch.wait + batch.held)


@settings(max_examples=100, deadline=None)
@given(st.lists(specs, max_size=15, unique_by=lambda s: s.run_id))
def test_waves_schedule_every_run_once(todo):
    plan = waves(todo, JH)
    assert sorted(s.run_id for w in plan.waves for s in w) == sorted(s.run_id for s in todo)
    assert all(w for w in plan.waves) and not plan.blocked


@settings(max_examples=100, deadline=None)
@given(st.lists(specs, max_size=15, unique_by=lambda s: s.run_id), st.data())
def test_live_waves_fit_what_is_up_and_block_only_what_never_fits(todo, data):
    # live: down hosts shrink each pool's capacity; what is free now is at most that
    cap = {p.name: data.draw(st.integers(0, p.usable)) for p in JH.pools.values()}
    free_now = {name: data.draw(st.integers(0, c)) for name, c in cap.items()}
    plan = waves(todo, JH, capacity=cap, free_now=free_now)
    placed = [s.run_id for w in plan.waves for s in w] + [s.run_id for s in plan.blocked]
    assert sorted(placed) == sorted(s.run_id for s in todo)
    assert all(s.gpus > cap[s.pool] for s in plan.blocked)
    for i, wave in enumerate(plan.waves):
        limit = free_now if i == 0 else cap
        assert all(sum(s.gpus for s in wave if s.pool == p) <= limit[p] for p in cap)
        assert wave or i == 0  # only the first wave (what starts now) may start nothing
