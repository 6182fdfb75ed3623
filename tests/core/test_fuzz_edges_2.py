"""Found by a fuzz review: paths that are FIFOs or devices, empty values that meant a default, non-string values
in cluster files, arguments that are not UTF-8. Each is one error line, exit 2, and nothing changed on disk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.collect.helpers import record
from tests.conftest import REPO, run_cli
from xdimo.collect.write import plots
from xdimo.collect.write.atomic import write_atomic
from xdimo.config import load_cluster
from xdimo.errors import ConfigError, XdimoError

ROOT = os.geteuid() == 0


def special_files(folder: Path) -> list[Path]:
    """A FIFO, and where this runs as root a character device (mknod 1 3: what /dev/null is): never the real
    /dev/null or /dev/full."""
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    made = [fifo]
    if ROOT:
        dev = folder / "chardev"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        made.append(dev)
    return made


def kind(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


def unchanged(paths: list[Path], kinds: list[int]) -> bool:
    return [kind(p) for p in paths] == kinds


def refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


# -- 1. collect --out / --fill at a FIFO or a device ------------------------------------------------------


def test_collect_out_refuses_a_fifo_or_a_device(workspace: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    targets = special_files(folder)
    kinds = [kind(p) for p in targets]
    for target in targets:
        out = run_cli(workspace, "collect", "--no-refresh", "--format", "json", "--out", str(target), timeout=30)
        refused(out, f"--out {target}: not a regular file")
    assert unchanged(targets, kinds)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in targets)  # no temporary file


def test_the_atomic_writer_refuses_a_fifo_or_a_device(tmp_path: Path) -> None:
    targets = special_files(tmp_path)
    kinds = [kind(p) for p in targets]
    for target in targets:
        with pytest.raises(XdimoError, match="not a regular file"):
            write_atomic(target, b"data", "--out")
    link = tmp_path / "link"
    link.symlink_to(targets[0])  # a symlink to a FIFO: the FIFO is what would be replaced
    with pytest.raises(XdimoError, match="a FIFO"):
        write_atomic(link, b"data", "--out")
    assert unchanged(targets, kinds) and link.is_symlink()


def test_collect_fill_refuses_a_fifo_instead_of_hanging(workspace: Path, tmp_path: Path) -> None:
    (fifo, *_) = special_files(tmp_path)
    out = run_cli(workspace, "collect", "--no-refresh", "--fill", str(fifo), timeout=30)
    refused(out, f"--fill {fifo}: not a regular file (a FIFO)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- 2. collect --plots: a missing parent; a plot file that is a FIFO -------------------------------------


def test_collect_plots_refuses_a_missing_parent(workspace: Path, tmp_path: Path) -> None:
    folder = tmp_path / "nonexist" / "deep" / "plots"
    out = run_cli(workspace, "collect", "--no-refresh", "--plots", str(folder))
    refused(out, f"--plots {folder}: no folder {folder.parent}")
    assert not (tmp_path / "nonexist").exists()


def test_collect_plots_in_an_existing_folder_still_makes_the_last_one(workspace: Path, tmp_path: Path) -> None:
    out = run_cli(workspace, "collect", "--no-refresh", "--plots", str(tmp_path / "plots"))
    assert out.returncode == 0, out.stderr
    assert "nothing to plot" in out.stderr


def test_collect_plots_refuses_a_file(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    refused(run_cli(workspace, "collect", "--no-refresh", "--plots", str(tmp_path / "file")), "not a folder")


def test_plots_refuse_a_fifo_before_any_plot_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    folder.mkdir()
    os.mkfifo(folder / "efficiency.png")  # the second plot: speedup.png would be written first
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25)]
    with pytest.raises(XdimoError, match="efficiency.png: not a regular file"):
        plots.write_plots(runs, folder)
    assert [p.name for p in folder.iterdir()] == ["efficiency.png"]  # no speedup.png, no temporary file
    assert stat.S_ISFIFO(os.lstat(folder / "efficiency.png").st_mode)


# -- 3. cluster files: string keys given as lists, numbers, nulls -----------------------------------------


def cluster(tmp_path: Path, **extra: object) -> Path:
    scheduler = "jh" if "launcher_args" in str(extra) else "slurm"  # the jh/lsf templates read launcher_args
    data = {"name": "site", "scheduler": scheduler, "pools": {"gpu": {"gpu": "H200", "cards": 8}}, **extra}
    path = tmp_path / "clusters" / "site.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("extra", "message"), [
    ({"workdir": ["a", "b"]}, "key 'workdir': expected a non-empty string, got ['a', 'b']"),
    ({"workdir": 5}, "key 'workdir': expected a non-empty string, got 5"),
    ({"workdir": ""}, "key 'workdir': expected a non-empty string"),
    ({"setup": {"a": 1}}, "key 'setup': expected a list of shell lines"),
    ({"setup": False}, "key 'setup': expected a list of shell lines"),
    ({"options": {"launcher_args": ["-x", "Y"]}}, "key 'options.launcher_args': expected a non-empty string"),
    ({"options": {"account": ["a"]}}, "key 'options.account': expected a non-empty string or an integer"),
    ({"options": {"qos": True}}, "key 'options.qos': expected a non-empty string or an integer"),
    ({"pools": {None: {"gpu": "H200", "cards": 8}}}, "key 'pools': null is no pool name"),
    ({"pools": {"gpu": {"gpu": "H200", "cards": 8, "queue": False}}}, "key 'pools.gpu.queue': expected a queue"),
    ({"pools": {"gpu": {"gpu": "H200", "cards": 8, "queue": ""}}}, "key 'pools.gpu.queue': expected a queue"),
])
def test_cluster_string_keys_must_be_strings(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_cluster(cluster(tmp_path, **extra))
    assert message in str(exc.value)


def test_cluster_keys_that_stay_accepted(tmp_path: Path) -> None:
    c = load_cluster(cluster(tmp_path, workdir="/scratch/me", setup="module load cuda", launcher="srun",
                             options={"account": 12345, "qos": "high", "sbatch": ["--mem=0"]},
                             pools={"gpu": {"gpu": "H200", "cards": 8, "queue": None}, 7: {"gpu": "A100",
                                                                                             "cards": 4}}))
    assert (c.workdir, c.setup, c.options["account"]) == ("/scratch/me", ("module load cuda",), 12345)
    assert sorted(c.pools) == ["7", "gpu"] and c.pools["gpu"].queue_name == "gpu"
    assert load_cluster(cluster(tmp_path, workdir=None, setup=None)).workdir == ""
    jh = load_cluster(cluster(tmp_path, options={"launcher_args": "-x NCCL_DEBUG", "user": None}))
    assert jh.scheduler == "jh" and jh.options["launcher_args"] == "-x NCCL_DEBUG"


# -- 4. init: an empty DIR; a dangling jobs/templates ------------------------------------------------------


def test_init_refuses_an_empty_dir(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "xdimo.cli", "init", ""], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    refused(out, "init: an empty DIR")
    assert list(tmp_path.iterdir()) == []


def test_init_checks_before_writing_anything(tmp_path: Path) -> None:
    root = tmp_path / "i4"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "templates").symlink_to(tmp_path / "nonexist")
    refused(run_cli(tmp_path, "init", str(root)), "jobs/templates is a symlink to nothing", "nothing written")
    assert sorted(p.name for p in root.rglob("*")) == ["jobs", "templates"]  # no clusters/, no jobs/*.yaml


def test_init_refuses_a_fifo_where_a_default_goes(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "clusters").mkdir(parents=True)
    os.mkfifo(root / "clusters" / "local.yaml")  # comparing it with the default would read it: a hang
    refused(run_cli(tmp_path, "init", str(root), timeout=30), "local.yaml is not a regular file (a FIFO)")
    assert [p.name for p in root.rglob("*")] == ["clusters", "local.yaml"]


# -- 5. logs / kill with an argument that is not UTF-8 -----------------------------------------------------


@pytest.mark.parametrize("verb", ["logs", "kill"])
def test_an_id_that_is_not_utf8_is_no_run(workspace: Path, verb: str) -> None:
    out = run_cli(workspace, verb, os.fsdecode(b"\xff\xfe"))
    refused(out, "no run or job '\\xff\\xfe'")


# -- 6. demo --timeout nan / inf / negative ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "0"])
def test_demo_timeout_must_be_a_finite_number_of_seconds(workspace: Path, value: str) -> None:
    out = run_cli(workspace, "demo", "--timeout", value)
    refused(out, "--timeout")
    assert not (workspace / "queue").exists()  # refused before anything was submitted


# -- 7. --ledger at a FIFO or a device ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_a_ledger_that_is_no_file_is_refused(workspace: Path, tmp_path: Path, where: str) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    targets = special_files(folder)
    kinds = [kind(p) for p in targets]
    for target in targets:
        if where == "env":
            out = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(workspace), "status"],
                                 capture_output=True, text=True, timeout=30, cwd=str(REPO),
                                 env={**os.environ, "XDIMO_LEDGER": str(target)})
        else:
            args = ["--ledger", str(target), "status"] if where == "before" else ["status", "--ledger", str(target)]
            out = run_cli(workspace, *args, timeout=30)
        refused(out, "not a regular file", "the ledger is an SQLite file")
    assert unchanged(targets, kinds)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in targets)  # no -journal beside


def test_the_default_ledger_path_is_checked_too(workspace: Path) -> None:
    (workspace / "queue").mkdir()
    os.mkfifo(workspace / "queue" / "ledger.sqlite")
    refused(run_cli(workspace, "status", timeout=30), "ledger.sqlite: not a regular file (a FIFO)")
    assert [p.name for p in (workspace / "queue").iterdir()] == ["ledger.sqlite"]


# -- 8. --cluster "", a FIFO as a matrix or cluster file --------------------------------------------------


@pytest.mark.parametrize("args", [["--cluster", "", "hosts"], ["hosts", "--cluster", ""], ["--cluster", " ", "plan",
                                  "demo"], ["--workdir", "", "hosts"], ["status", "--ledger", ""]])
def test_an_empty_option_is_refused(workspace: Path, args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "xdimo.cli", *args], capture_output=True, text=True, timeout=60,
                         cwd=workspace)
    refused(out, "an empty value")


def test_plan_refuses_a_fifo_matrix_instead_of_hanging(workspace: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    refused(run_cli(workspace, "plan", str(fifo), timeout=30), f"{fifo}: not a regular file (a FIFO)")


def test_a_fifo_cluster_file_is_refused(workspace: Path) -> None:
    path = workspace / "clusters" / "site.yaml"
    os.mkfifo(path)
    refused(run_cli(workspace, "--cluster", "site", "plan", "demo", timeout=30), "site.yaml: not a regular file")
