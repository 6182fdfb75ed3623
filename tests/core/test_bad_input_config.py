"""Bad cluster and matrix files, and bad `init` targets: one clear error line each, never an internal error."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from xdimo.config import Cluster, Pool, load_cluster
from xdimo.errors import ConfigError, RuleError
from xdimo.matrix import load_matrix
from xdimo.plan import check_matrix, waves
from xdimo.rules import check_run
from xdimo.spec import RunSpec, parse_moe

REPO = Path(__file__).resolve().parents[2]
JH = {"name": "jh", "scheduler": "jh", "cpu_per_gpu": 8, "max_pending": 1,
      "pools": {"gpu_h200": {"gpu": "H200", "cards": 5},
                "gpu_a100": {"gpu": "A100 80GB", "cards": 16, "cards_per_node": 4}}}
JH_CLUSTER = Cluster(name="jh", scheduler="jh", path="clusters/jh.yaml", pools={
    "gpu_h200": Pool("gpu_h200", "H200", 5),
    "gpu_a100": Pool("gpu_a100", "A100 80GB", 16, cards_per_node=4),
})


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def cluster_error(tmp_path: Path, data: object, name: str = "jh.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        load_cluster(write(tmp_path, name, data))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    return message


def matrix_error(tmp_path: Path, data: object) -> str:
    path = write(tmp_path, "m.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def with_options(**options: object) -> dict:
    return {**JH, "options": options}


# 1. name vs file name ------------------------------------------------------------------------------------------

def test_cluster_name_must_match_its_file_name(tmp_path):
    message = cluster_error(tmp_path, {**JH, "name": "othername"}, name="mism.yaml")
    assert "'othername'" in message and "'mism'" in message
    for path in sorted((REPO / "clusters").glob("*.yaml")):  # the shipped ones agree
        assert load_cluster(path).name == path.stem
    data = {k: v for k, v in JH.items() if k != "name"}  # no name: the file's
    assert load_cluster(write(tmp_path, "site.yaml", data)).name == "site"


# 2. bytes that are not UTF-8 -----------------------------------------------------------------------------------

def test_non_utf8_cluster_file_names_file_line_and_offset(tmp_path):
    raw = b"name: jh\nscheduler: jh\npools:\n  p:\n    gpu: H200 \xff\n    cards: 8\n"
    offset = raw.index(b"\xff")
    message = cluster_error(tmp_path, raw)
    assert "not UTF-8" in message and "line 5" in message and f"offset {offset}" in message


def test_non_utf8_matrix_file(tmp_path):
    assert "not UTF-8" in matrix_error(tmp_path, b"name: m\ndefaults: {pool: p}\nruns: \xfe\n")


# 3. backend options --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, needle", [
    ({"retries": "x"}, "'options.retries': expected an integer >= 0"),
    ({"retries": -1}, "'options.retries': expected an integer >= 0"),
    ({"retries": 1.5}, "'options.retries'"),
    ({"timeout_s": "abc"}, "'options.timeout_s': expected a number > 0"),
    ({"timeout_s": 0}, "'options.timeout_s': expected a number > 0"),
    ({"timeout_s": -1}, "'options.timeout_s'"),
    ({"timeout_s": True}, "'options.timeout_s'"),
    ({"settle_grace_s": -3}, "'options.settle_grace_s': expected a number >= 0"),
    ({"jobs_o_format": "false"}, "'options.jobs_o_format': expected true or false"),
    ({"host_gpu_models": 0}, "'options.host_gpu_models'"),
    ({"sbatch": "--exclusive"}, "'options.sbatch'"),
])
def test_bad_backend_options_fail_at_load(tmp_path, options, needle):
    assert needle in cluster_error(tmp_path, with_options(**options))


def test_good_backend_options_load_and_unknown_ones_are_refused(tmp_path):
    options = {"timeout_s": 0.5, "retries": 0, "settle_grace_s": 0, "jobs_o_format": False}
    assert load_cluster(write(tmp_path, "jh.yaml", with_options(**options))).options == options
    assert "my_template_knob" in cluster_error(tmp_path, with_options(**options, my_template_knob=[1, 2]))
    assert "'options.retries'" in cluster_error(tmp_path, with_options(**{**options, "retries": "2"}))


# 4. init into something that is not a directory ----------------------------------------------------------------

def test_init_into_a_file_or_below_one_is_one_line(tmp_path):
    afile = write(tmp_path, "afile", "x")
    for target, needle in ((afile, "not a directory"), (afile / "sub", "Not a directory")):
        result = run_cli(tmp_path, "init", str(target))
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "internal error" not in lines[0] and str(target) in lines[0] and needle in lines[0]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_init_where_no_directory_can_be_made():
    result = run_cli(REPO, "init", "/proc/xdimo-no-such-dir")
    assert result.returncode != 0 and "internal error" not in result.stderr
    assert result.stderr.startswith("error: cannot make a workspace in /proc/xdimo-no-such-dir")


# 5. unknown pool blames the matrix -----------------------------------------------------------------------------

def test_unknown_pool_names_the_matrix_and_the_run(tmp_path):
    path = write(tmp_path, "m.yaml", {"defaults": {"pool": "nope", "model": "Latte-S/2"}, "runs": [{"gpus": 1}]})
    matrix = load_matrix(path)
    with pytest.raises(ConfigError) as info:
        check_matrix(matrix, JH_CLUSTER)
    message = str(info.value)
    assert message.startswith(f"{path}: runs[0]: run {matrix.runs[0].run_id}")  # the place in the file, then the run
    assert "unknown pool 'nope'" in message and "gpu_a100, gpu_h200" in message and "clusters/jh.yaml" not in message


# 6. cards/gpu auto only on this machine ------------------------------------------------------------------------

@pytest.mark.parametrize("pool, needle", [
    ({"gpu": "H200", "cards": "auto"}, "'pools.p.cards': 'auto'"),
    ({"gpu": "auto", "cards": 8}, "'pools.p.gpu': 'auto'"),
])
def test_auto_is_refused_on_a_remote_cluster(tmp_path, pool, needle):
    message = cluster_error(tmp_path, {**JH, "pools": {"p": pool}})
    assert needle in message and "scheduler: local" in message
    here = {"name": "here", "scheduler": "local", "pools": {"p": pool}}  # this machine: auto is right
    assert load_cluster(write(tmp_path, "here.yaml", here)).pools["p"].cards >= 1


# 7. unknown and duplicate keys ---------------------------------------------------------------------------------

def test_unknown_top_level_cluster_key(tmp_path):
    message = cluster_error(tmp_path, {**JH, "cpus_per_gpu": 8})
    assert "unknown key 'cpus_per_gpu'" in message and "cpu_per_gpu" in message


def test_unknown_pool_key(tmp_path):
    data = {**JH, "pools": {"p": {"gpu": "H200", "cards": 8, "cardz_per_node": 4}}}
    message = cluster_error(tmp_path, data)
    assert "unknown key 'pools.p.cardz_per_node'" in message and "cards_per_node" in message


def test_duplicate_key_in_a_matrix_names_both_lines(tmp_path):
    text = "name: m\ndefaults: {pool: p}\ndefaults: {pool: q}\nruns: [{gpus: 1}]\n"
    message = matrix_error(tmp_path, text)
    assert "line 3" in message and "duplicate key 'defaults' (first on line 2)" in message


def test_duplicate_key_inside_a_pool(tmp_path):
    text = "name: jh\nscheduler: jh\npools:\n  p:\n    gpu: H200\n    cards: 8\n    cards: 4\n"
    assert "duplicate key 'cards'" in cluster_error(tmp_path, text)
    merged = "name: jh\nscheduler: jh\npools:\n  a: &b {gpu: H200, cards: 8}\n  c:\n    <<: *b\n    cards: 4\n"
    assert load_cluster(write(tmp_path, "jh.yaml", merged)).pools["c"].cards == 4  # overriding a merge is fine


def test_a_preset_that_overrides_its_own_merge_is_valid_yaml(tmp_path):
    # the anchored preset is flattened by the outer merge before its own mapping is built: not a duplicate
    text = ("name: jh\nscheduler: jh\nbase: &base {gpu: H200, cards: 8}\n"
            "small: &small {<<: *base, cards: 4}\npools:\n  p: {<<: *small}\n")
    path = write(tmp_path, "jh.yaml", text)
    from xdimo.config import read_yaml

    assert read_yaml(path)["pools"]["p"] == {"gpu": "H200", "cards": 4}
    dup = write(tmp_path, "d.yaml", "a: &a {x: 1}\nb: {<<: *a, y: 1, y: 2}\n")
    with pytest.raises(ConfigError, match="duplicate key 'y'"):
        read_yaml(dup)


@pytest.mark.parametrize(("scheduler", "where", "value"), [
    ("lsf", "launcher", "blaunh"), ("jh", "options.launcher", "srun"), ("local", "launcher", "mpirun")])
def test_an_unknown_launcher_is_refused(tmp_path, scheduler, where, value):
    pool = "pools:\n  p: {gpu: H200, cards: 8}\n" if scheduler != "local" else "pools:\n  p: {cards: 2}\n"
    key = f"launcher: {value}\n" if where == "launcher" else f"options: {{launcher: {value}}}\n"
    message = cluster_error(tmp_path, f"name: jh\nscheduler: {scheduler}\n{pool}{key}")
    assert f"key '{where}'" in message and value in message


# 8. identical runs ---------------------------------------------------------------------------------------------

def test_identical_runs_that_differ_only_in_label_are_refused(tmp_path):
    message = matrix_error(tmp_path, {"defaults": {"pool": "p", "model": "Latte-T/2"},
                                      "runs": [{"label": "a"}, {"label": "b"}]})
    assert "runs[1] is the same run as runs[0]" in message and "label is not part of" in message


def test_a_matrix_row_repeated_in_runs_is_refused(tmp_path):
    message = matrix_error(tmp_path, {"defaults": {"pool": "p", "model": "Latte-T/2"},
                                      "matrix": {"gpus": [1, 2]}, "runs": [{"gpus": 2}]})
    assert "runs[0] is the same run as the matrix's run {gpus: 2}" in message
    for path in sorted((REPO / "jobs").glob("*.yaml")):  # the shipped matrices have no such rows
        assert load_matrix(path).runs


# 9. run ids are computed once per spec -------------------------------------------------------------------------

def test_waves_hash_each_spec_once(monkeypatch):
    calls = []
    real = RunSpec.digest
    monkeypatch.setattr(RunSpec, "digest", lambda self: calls.append(1) or real(self))
    runs = [RunSpec(matrix="m", pool="gpu_h200", gpus=1 + i % 3, steps=100 + i) for i in range(60)]
    plan = waves(runs, JH_CLUSTER)
    assert sum(len(w) for w in plan.waves) == 60
    assert len(calls) == 60  # one digest per spec, however many waves ask for the id


# 10. sizes that can never run or make no sense ------------------------------------------------------------------

def test_multi_node_run_on_a_pool_without_cards_per_node():
    with pytest.raises(RuleError) as info:
        check_run(JH_CLUSTER, RunSpec(matrix="m", pool="gpu_h200", gpus=4, nodes=2))
    message = str(info.value)
    assert "2 nodes" in message and "pools.gpu_h200.cards_per_node" in message and "clusters/jh.yaml" in message


def test_more_nodes_than_the_pool_has():
    with pytest.raises(RuleError, match="8 nodes, but pool gpu_a100 has 4"):
        check_run(JH_CLUSTER, RunSpec(matrix="m", pool="gpu_a100", gpus=8, nodes=8))
    check_run(JH_CLUSTER, RunSpec(matrix="m", pool="gpu_a100", gpus=8, nodes=2))  # fits: 2 nodes of 4


def test_experts_are_capped():
    assert parse_moe("256E8A") == (256, 8)
    with pytest.raises(ValueError, match="more than 256 experts"):
        parse_moe("257E1A")


@pytest.mark.parametrize("run, needle", [
    ({"moe": "99999999999E1A"}, "key 'runs[0].moe': moe '99999999999E1A' has more than 256 experts"),
    ({"steps": 10**29}, "key 'runs[0].steps': expected an integer <= 1000000000"),
    ({"local_batch": 10**10}, "key 'runs[0].local_batch': expected an integer <= 1000000000"),
])
def test_absurd_sizes_in_a_matrix(tmp_path, run, needle):
    data = {"defaults": {"pool": "p", "model": "Latte-T/2"}, "runs": [run]}
    assert needle in matrix_error(tmp_path, data)


@pytest.mark.parametrize(("pools", "needle"), [
    ({"gpu h200/x": {"gpu": "H200", "cards": 5}}, "key 'pools.gpu h200/x': expected a queue name"),
    ({"p": {"gpu": "H200", "cards": 5, "queue": "gpu h200"}}, "key 'pools.p.queue': expected a queue name"),
])
def test_a_pool_or_queue_name_the_scheduler_would_misread_is_refused(tmp_path, pools, needle):
    """It becomes `#JSUB -q NAME`: a space sends the job to the queue named by the first word."""
    assert needle in cluster_error(tmp_path, {**JH, "pools": pools})
