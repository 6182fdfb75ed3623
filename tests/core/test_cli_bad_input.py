"""Every bad input: one `error:` line on stderr, a non-zero exit, no traceback, the ledger unchanged."""

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

GOOD = {"name": "bad", "defaults": {"pool": "local", "model": "Latte-T/2", "steps": 5}, "runs": [{"gpus": 1}]}


def matrix_with(ws: Path, **run) -> str:
    data = {**GOOD, "runs": [{"gpus": 1, **run}]}
    path = ws / "jobs" / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def ledger_digest(ws: Path) -> str:
    path = ws / "queue" / "ledger.sqlite"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "none"


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def seeded(workspace):
    """A workspace whose ledger already holds a finished run, so 'unchanged' means something."""
    path = workspace / "jobs" / "good.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "name": "good"}))
    assert run_cli(workspace, "submit", str(path)).returncode == 0
    assert run_cli(workspace, "status", "--watch", "--interval", "0.2").returncode == 0
    return workspace


@pytest.mark.parametrize("make_args, needles", [
    (lambda ws: ["submit", str(ws / "jobs" / "missing.yaml")], ["missing.yaml", "no such file"]),
    (lambda ws: ["submit", malformed(ws)], ["malformed YAML"]),
    (lambda ws: ["submit", matrix_with(ws, pool="gpu_a100")], ["unknown pool 'gpu_a100'"]),
    (lambda ws: ["submit", matrix_with(ws, gpus=3)], ["asks for 3 GPUs", "only 2 usable"]),
    (lambda ws: ["submit", matrix_with(ws, cpus=8)], ["cpus 8 breaks the site rule"]),
    (lambda ws: ["submit", matrix_with(ws, gpus=0)], ["key 'runs[0].gpus': expected an integer >= 1, got 0"]),
    (lambda ws: ["submit", matrix_with(ws, steps=-5)], ["key 'runs[0].steps': expected an integer >= 1, got -5"]),
    (lambda ws: ["submit", matrix_with(ws, model="Latte-Z/2")], ["unknown model 'Latte-Z/2'"]),
    (lambda ws: ["plan", matrix_with(ws, gpus=3)], ["only 2 usable"]),
    (lambda ws: ["kill", "no-such-run"], ["no run or job 'no-such-run'"]),
    (lambda ws: ["logs", "424242"], ["no run or job '424242'"]),
    (lambda ws: ["kill"], ["give run/job ids or --all"]),
    (lambda ws: ["--cluster", "nowhere", "hosts"], ["unknown cluster 'nowhere'"]),
    (lambda ws: ["submit", "bad", "--batch", "sometimes"], ["'sometimes' is not one of"]),
    (lambda ws: ["frobnicate"], ["No such command"]),
    (lambda ws: ["--cluster", broken_cluster(ws), "hosts"], ["key 'pools.local.cards'"]),
])
def test_bad_input(seeded, make_args, needles):
    before = ledger_digest(seeded)
    result = run_cli(seeded, *make_args(seeded))
    assert_one_line_error(result, *needles)
    assert ledger_digest(seeded) == before


def malformed(ws: Path) -> str:
    path = ws / "jobs" / "bad.yaml"
    path.write_text("name: bad\nruns: [{gpus: 1\n")
    return str(path)


def broken_cluster(ws: Path) -> str:
    (ws / "clusters" / "broken.yaml").write_text(
        "scheduler: local\npools:\n  local: {gpu: cpu, cards: -1}\n")
    return "broken"


def test_help_teaches_with_examples(workspace):
    from xdimo.cli import VERBS

    for verb in VERBS:
        out = run_cli(workspace, verb, "--help")
        assert out.returncode == 0 and "Examples:" in out.stdout and "xdimo-jobs" in out.stdout, verb
