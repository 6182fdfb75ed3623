"""python -m xdimo.train's review fixes: a misspelt flag is refused naming the flag it meant (an unknown flag like
no other keeps its warning, from rank 0 only); every argument error is one `error:` line, exit 2; run.json's speed
block records what ran; --resume refuses a checkpoint written with other precision, data or optimiser settings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import conftest_data as cd
import pytest
import torch

from xdimo.train.__main__ import main
from xdimo.train.speed import SpeedOptions

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--precision", "fp32", "--parallel", "single",
        "--local-batch", "2", "--log-every", "1"]


def _one_error(capsys, *says: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and all(s in err[0] for s in says), err
    return err[0]


# ------------------------------------------------------------------------------------------- 1: misspelt flags

@pytest.mark.parametrize(("flag", "meant"), [("--depht", "--depth"), ("--precison", "--precision"),
                                             ("--local_batch", "--local-batch")])
def test_a_flag_close_to_a_workload_flag_is_refused_naming_it(tmp_path, capsys, flag, meant):
    value = "fp32" if meant == "--precision" else "3"
    assert main(["--run-dir", str(tmp_path / "r"), *TINY, flag, value]) == 2
    _one_error(capsys, f"{flag} is not a workload flag", f"did you mean {meant}?")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("rank", "warned"), [("0", True), ("1", False)])
def test_an_unknown_flag_like_no_other_warns_from_rank_0_only(tmp_path, capsys, monkeypatch, rank, warned):
    monkeypatch.setenv("RANK", rank)
    # a data folder that is not there stops the run right after the warning, before anything trains
    assert main(["--run-dir", str(tmp_path / "r"), *TINY, "--standin-sleep", "3", "--data", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert ("warning: --standin-sleep is not a workload flag; kept in run.json" in err) == warned, err


# ------------------------------------------------------------------------------------------- 2: argument errors

def test_an_invalid_choice_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xdimo.train", "--run-dir", str(tmp_path / "r"), "--precision", "fp16"],
                         capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --precision: invalid choice: 'fp16'"), err


@pytest.mark.parametrize("argv", [["--precision", "fp16"], ["--steps", "x"], []])  # [] lacks --run-dir
def test_every_argument_error_is_one_line(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main([*argv] if not argv else ["--run-dir", "r", *argv])
    assert e.value.code == 2
    _one_error(capsys)


# ------------------------------------------------------------------------------------------- 3: speed as it ran

class _Dev:
    def __init__(self, kind: str) -> None:
        self.type = kind


def test_the_speed_block_says_what_ran():
    assert SpeedOptions(compile="on", temporal_attention="matmul").used(_Dev("cuda"), "bf16", 4)["compile"] == "blocks"
    auto_cpu = SpeedOptions().used(_Dev("cpu"), "bf16", 4)
    assert auto_cpu["compile"] == "off" and auto_cpu["compile_requested"] == "auto"
    assert auto_cpu["residual"] == "bf16" and auto_cpu["residual_note"] is None
    fp32 = SpeedOptions(recompute_blocks=-1, inductor_tuning=True).used(_Dev("cpu"), "fp32", 4)
    assert fp32["residual"] is None and fp32["residual_note"].startswith("n/a")
    assert fp32["recompute_blocks"] == 4 and fp32["inductor_tuning"] is False  # nothing compiled, nothing tuned


# ------------------------------------------------------------------------------------------- 3 + 4: a real run

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("review") / "run"
    assert main(["--run-dir", str(run), "--steps", "2", *TINY]) == 0  # --compile auto: off on the CPU
    return run


def test_run_json_records_the_compile_scope_and_residual_that_ran(trained):
    speed = json.loads((trained / "run.json").read_text())["speed"]
    assert speed["compile"] == ("blocks" if torch.cuda.is_available() else "off")
    assert speed["compile_requested"] == "auto"
    assert speed["residual"] is None and speed["residual_requested"] == "bf16"  # an fp32 run has no bf16 stream


def _resumed(trained, tmp_path, capsys, *flags: str) -> str:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = (run / "run.json").read_text()
    assert main(["--run-dir", str(run), "--steps", "4", "--resume", *TINY, *flags]) == 2
    assert (run / "run.json").read_text() == before
    return _one_error(capsys, "is of another run")


@pytest.mark.parametrize(("flags", "says"), [
    (["--precision", "bf16"], "precision fp32 (now bf16)"),
    (["--lr", "0.001"], "lr 0.0001 (now 0.001)"),
    (["--weight-decay", "0.1"], "weight_decay 0.0 (now 0.1)"),
    (["--ema-decay", "0.5"], "ema_decay 0.9999 (now 0.5)"),
])
def test_resume_refuses_a_changed_setting_naming_both_values(trained, tmp_path, capsys, flags, says):
    assert says in _resumed(trained, tmp_path, capsys, *flags)


def test_resume_refuses_other_data(trained, tmp_path, capsys):
    cache = cd.write_fake_cache(tmp_path / "cache", [50, 60], latent_size=8)
    assert f"data synthetic (now {cache})" in _resumed(trained, tmp_path, capsys, "--data", str(cache))


def test_resume_with_the_same_settings_and_more_steps_still_works(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["--run-dir", str(run), "--steps", "3", "--resume", *TINY]) == 0
