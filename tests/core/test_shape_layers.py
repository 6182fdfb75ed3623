"""Layering: config is a bottom layer (no scheduler import), quoting helpers live in xdimo.text, and the
workload's CLI choices come from torch-free constants (`python -m xdimo.train --help` loads no torch)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from xdimo import hardware, text
from xdimo.config import load_cluster
from xdimo.schedulers import runner
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES
from xdimo.train import speed
from xdimo.train.__main__ import parser


def _local_auto(tmp_path: Path) -> Path:
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump({"name": "local", "scheduler": "local", "pools": {"local": {"cards": "auto"}}}))
    return path


def test_a_local_cluster_s_auto_cards_come_from_hardware_local_gpus(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "local_gpus", lambda: ("NVIDIA H100 80GB HBM3",) * 2)
    pool = load_cluster(_local_auto(tmp_path)).pools["local"]
    assert (pool.cards, pool.gpu_model) == (2, "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(hardware, "local_gpus", lambda: ())
    assert load_cluster(_local_auto(tmp_path)).pools["local"].gpu_model == "cpu"


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


def test_config_imports_no_scheduler_even_for_auto_cards(tmp_path: Path) -> None:
    loaded = _modules_after(f"from xdimo.config import load_cluster; load_cluster(__import__('pathlib')"
                            f".Path({str(_local_auto(tmp_path))!r}))")
    assert not [m for m in loaded if m.startswith("xdimo.schedulers")]


@pytest.mark.parametrize("verb", [["plan", "hw-4gpu"], ["hosts"], ["plan", "hw-4gpu", "--live"]])
def test_a_remote_cluster_never_loads_nvml(workspace: Path, verb: list[str]) -> None:
    shutil.copy(REPO / "clusters" / "xdimo-jh.yaml", workspace / "clusters")
    code = ("from xdimo.cli import cli\n"
            f"cli.main(args=['--workdir', {str(workspace)!r}, '--cluster', 'xdimo-jh', *{verb!r}], "
            "standalone_mode=False)")
    assert "pynvml" not in _modules_after(code)


def test_the_quoting_helpers_live_in_text_only() -> None:
    assert text.one_line("a\n  b\x1b") == "a b\ufffd" and text.excerpt("\n\nfirst\nsecond") == "first"
    for name in ("CONTROL", "EXCERPT_CHARS"):
        assert not hasattr(runner, name)  # one definition, in xdimo.text


def test_the_workload_s_choices_are_the_shared_constants() -> None:
    choices = {a.dest: tuple(a.choices) for a in parser()._actions if a.choices}
    assert choices["parallel"] == PARALLEL_CHOICES and choices["precision"] == PRECISION_CHOICES
    assert choices["compile"] == speed.COMPILE_SCOPES and "on" in speed.COMPILE_SCOPES
    assert choices["temporal_attention"] == speed.TEMPORAL_CHOICES
    assert choices["residual"] == speed.RESIDUAL_DTYPES


@pytest.mark.parametrize(("field", "value"), [("compile", "blokcs"), ("temporal_attention", "flash"),
                                              ("residual", "fp16")])
def test_speed_options_refuse_an_unknown_choice(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"unknown .*{value!r}"):
        speed.SpeedOptions(**{field: value})
    assert speed.SpeedOptions(compile="on").compile_scope(type("D", (), {"type": "cpu"})()) == "blocks"


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["--run-dir", "x", "--compile", "nope"], 2)])
def test_train_help_and_a_bad_choice_load_no_torch(args: list[str], code: int) -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "xdimo.train", *args],
                         capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == code, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported


def _xdimo_imports(module: str) -> set[str]:
    """The xdimo modules ``module`` imports, anywhere in its source (lazy imports count too)."""
    import ast

    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xdimo"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("xdimo"))
    return found


# The stages in the order the data flows (ARCHITECTURE.md): each may import the ones before it, never one after.
# The poll that brings the ledger up to date (xdimo.poll) sits below submit: submit refreshes before each batch.
STAGES = ["xdimo.ledger", "xdimo.reconcile", "xdimo.poll", "xdimo.submit", "xdimo.kill", "xdimo.follow"]


@pytest.mark.parametrize("module", STAGES)
def test_the_run_lifecycle_modules_import_no_later_stage(module: str) -> None:
    later = set(STAGES[STAGES.index(module) + 1:]) | {"xdimo.cli"}
    assert not {m for m in _xdimo_imports(module) if m in later or m.startswith("xdimo.cli.")}
