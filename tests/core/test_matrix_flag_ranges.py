"""A matrix's train_args go through the workload's own range checks (xdimo/train/flags.py, the one table
`python -m xdimo.train` checks too), torch-free: `lr: -1` or a seed past 2**63 is refused by plan and submit in one
line naming the file, the row and the key, not after the job has queued (35 lines of torchrun traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from xdimo.errors import ConfigError
from xdimo.matrix import load_matrix
from xdimo.train import flags

BASE = {"pool": "local", "model": "Latte-T/2", "steps": 5, "frames": 4, "image_size": 64}
BIG = 99999999999999999999


def write(folder: Path, train_args: dict, name: str = "m") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "defaults": BASE, "runs": [{"gpus": 1},
                                                                            {"gpus": 2, "train_args": train_args}]}))
    return path


def refused(tmp_path: Path, train_args: dict) -> str:
    path = write(tmp_path, train_args)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: key")
    return message


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("lr", -1, "--lr must be > 0, got -1"),
    ("lr", float("nan"), "--lr must be a finite number, got nan"),
    ("seed", BIG, f"--seed must be < 2**63, got {BIG}"),
    ("seed", -1, "--seed must be an integer >= 0, got -1"),
    ("ema_decay", 2, "--ema-decay must be in [0, 1], got 2"),
    ("weight-decay", -0.5, "--weight-decay must be >= 0, got -0.5"),
    ("clip_grad", 0, "--clip-grad must be > 0, got 0"),
    ("capacity_factor", 0, "--capacity-factor must be > 0, got 0"),
    ("workers", -1, "--workers must be >= 0, got -1"),
    ("ckpt_every", -1, "--ckpt-every must be an integer >= 0, got -1"),
    ("warmup_steps", -3, "--warmup-steps must be an integer >= 0, got -3"),
    ("recompute_blocks", -2, "--recompute-blocks must be an integer >= -1, got -2"),
    ("nccl_timeout_s", 0, "--nccl-timeout-s must be an integer >= 1, got 0"),
    ("depth", 0, "--depth must be >= 1, got 0"),
])
def test_a_value_out_of_the_workload_s_range_is_refused(tmp_path, key, value, problem):
    message = refused(tmp_path, {key: value})
    assert message.startswith(f"{tmp_path / 'm.yaml'}: key 'runs[1].train_args.{key}': ")
    assert message.endswith(problem)


def test_the_matrix_and_the_workload_say_the_same_words(tmp_path):
    """One table: the matrix's message is the workload's own (flags.value_problem, what TrainConfig raises)."""
    assert refused(tmp_path, {"lr": -1}).endswith(flags.value_problem("lr", -1.0))
    assert refused(tmp_path, {"seed": BIG}).endswith(flags.value_problem("seed", BIG))


def test_a_hidden_size_the_heads_do_not_split_is_refused(tmp_path):
    message = refused(tmp_path, {"hidden": 100, "heads": 7})
    assert "keys 'runs[1].train_args.heads', 'runs[1].train_args.hidden': " in message
    assert message.endswith("hidden 100 must be even and divisible by heads 7")


def test_values_in_range_are_kept(tmp_path):
    m = load_matrix(write(tmp_path, {"lr": 0.001, "seed": 2**63 - 1, "ema_decay": 1, "capacity_factor": "none",
                                     "clip_grad": float("inf"), "hidden": 96, "heads": 6, "depth": 2}))
    assert dict(m.runs[1].train_args) == {"lr": "0.001", "seed": str(2**63 - 1), "ema_decay": "1",
                                          "capacity_factor": "none", "clip_grad": "inf", "hidden": "96",
                                          "heads": "6", "depth": "2"}


@pytest.mark.parametrize("verb", [("plan",), ("submit",), ("submit", "--dry-run")])
@pytest.mark.parametrize(("key", "value"), [("lr", -1), ("seed", BIG)])
def test_plan_and_submit_refuse_it_in_one_line(workspace, verb, key, value):
    write(workspace / "jobs", {key: value}, "bad")
    out = run_cli(workspace, *verb, "bad")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "bad.yaml: key 'runs[1].train_args." + key in lines[0]
    assert not (workspace / "logs").exists() or not any((workspace / "logs").rglob("job.sh"))


def test_the_range_checks_load_no_torch():
    code = ("import sys, xdimo.train.flags as f, xdimo.matrix; f.value_problem('lr', -1.0); "
            "f.shape_problem('Latte-T/2', None, 4, 65); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_an_unknown_key_under_defaults_or_matrix_is_said_there(tmp_path: Path) -> None:
    """A typo under defaults: was reported at `matrix{'gpus': 1}`, the first row it reached."""
    for section, body in (("defaults", "defaults: {pool: local, stpes: 3}\nmatrix: {gpus: [1]}\n"),
                          ("matrix", "defaults: {pool: local}\nmatrix: {gpu: [1]}\n")):
        path = tmp_path / "t.yaml"
        path.write_text("name: t\n" + body)
        with pytest.raises(ConfigError, match=rf": unknown key '{section}\.(stpes|gpu)'.*did you mean"):
            load_matrix(path)
