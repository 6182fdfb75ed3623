"""`python -m xdimo.train` with a --run-dir it cannot use, a checkpoint that is no checkpoint, or a setting that
fails only once the model or the data loader is made: one `error:` line and exit 2, never a traceback, and
nothing written (no run.json for a run that never trained, no orphan last.tmp)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from xdimo.train import flags
from xdimo.train.__main__ import main
from xdimo.train.loop import step_generator

SMALL = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--precision", "fp32", "--compile", "off",
         "--parallel", "single", "--log-every", "1", "--steps", "2"]


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# 1. a --run-dir the run cannot write -----------------------------------------------------------------------------

def test_an_existing_file_as_run_dir_is_one_line(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    assert main(["--run-dir", str(file), *SMALL]) == 2  # was a FileExistsError traceback
    assert one_error(capsys) == f"error: --run-dir {file} exists and is not a folder"
    assert file.read_text() == "mine\n"


def test_a_run_dir_under_a_file_is_one_line(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    assert main(["--run-dir", str(file / "run"), *SMALL]) == 2  # was a NotADirectoryError traceback
    assert one_error(capsys) == f"error: --run-dir {file / 'run'}: {file} is not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_a_run_dir_that_cannot_be_created_is_one_line(capsys):
    assert main(["--run-dir", "/proc/xdimo-run", *SMALL]) == 2  # was a FileNotFoundError traceback
    assert "error: --run-dir /proc/xdimo-run: cannot create it in /proc (" in one_error(capsys)


def _read_only(monkeypatch, folder: Path) -> None:
    """``folder`` refuses new entries, even to root (a read-only mount does; chmod does not stop root)."""
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize("exists", [True, False], ids=["existing folder", "new folder"])
def test_a_read_only_run_dir_is_one_line_and_nothing_is_built(tmp_path, capsys, monkeypatch, exists):
    ro = tmp_path / "ro"
    ro.mkdir()
    run = ro if exists else ro / "run"
    _read_only(monkeypatch, ro)
    import xdimo.train.loop as loop

    monkeypatch.setattr(loop, "build", lambda *a: pytest.fail("the model was built for a run that cannot write"))
    assert main(["--run-dir", str(run), *SMALL]) == 2
    message = one_error(capsys)
    assert message.startswith(f"error: --run-dir {run}: cannot ") and "Permission denied" in message
    assert list(ro.iterdir()) == []  # the write check leaves nothing behind


# 2. an empty --run-dir ---------------------------------------------------------------------------------------------

def test_an_empty_run_dir_is_refused_not_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["--run-dir", "", *SMALL])  # was exit 0 with run.json, metrics.jsonl, checkpoints/ in the cwd
    assert exit_.value.code == 2
    assert one_error(capsys) == "error: argument --run-dir: expected a folder, got an empty path"
    assert list(tmp_path.iterdir()) == []


# 3. a checkpoint that is no checkpoint ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    assert main(["--run-dir", str(run), *SMALL]) == 0
    return run


def _resume(run: Path, capsys, *extra: str) -> str:
    assert main(["--run-dir", str(run), *SMALL, "--steps", "4", *extra]) == 2
    return one_error(capsys)


def test_a_folder_as_last_pt_is_one_line_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / "last.pt").mkdir(parents=True)
    message = _resume(run, capsys, "--resume")  # trained from step 0, then an IsADirectoryError at the save
    assert message.startswith(f"error: cannot read checkpoint {run / 'checkpoints' / 'last.pt'}: ")
    assert message.endswith("(move it away to start over)")
    assert sorted(p.name for p in run.rglob("*")) == ["checkpoints", "last.pt"]  # no run.json, no last.tmp


def test_a_folder_as_last_pt_is_one_line_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / "last.pt").mkdir(parents=True)
    message = _resume(run, capsys)
    assert message == f"error: {run / 'checkpoints' / 'last.pt'} is a folder where the run writes a file " \
                      "(move it away)"
    assert not (run / "run.json").exists() and not (run / "metrics.jsonl").exists()


def test_a_file_as_the_checkpoints_folder_is_one_line_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("")
    assert "checkpoints is not a folder" in _resume(run, capsys)
    assert not (run / "run.json").exists()


@pytest.mark.parametrize(("state", "says"), [
    ({"step": "x"}, "its 'step' is a str"),  # was KeyError: 'model'
    ({"model": {}}, "it has no 'step'"),
    ([1, 2], "it holds a list"),  # was AttributeError: 'list' object has no attribute 'get'
], ids=["step x", "no step", "a list"])
def test_a_foreign_pickle_as_last_pt_is_one_line(tmp_path, capsys, state, says):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save(state, run / "checkpoints" / "last.pt")
    message = _resume(run, capsys, "--resume")
    assert message.startswith("error: cannot read checkpoint ") and says in message
    assert message.endswith("(move it away to start over)")
    assert not (run / "run.json").exists()


def test_a_checkpoint_whose_ema_does_not_fit_is_one_line(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=False)
    state["ema"] = state["ema"][:1]
    torch.save(state, path)
    message = _resume(run, capsys, "--resume")  # was "error: zip() argument 2 is shorter than argument 1"
    assert "the checkpoint's optimiser or EMA state does not fit this model" in message


# 4. settings refused before anything is written ---------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--image-size", "65"], "image size 65 must be a multiple of 16 for Latte-T/2"),
    (["--hidden", "100", "--heads", "7"], "hidden 100 must be even and divisible by heads 7"),
    (["--seed", "99999999999999999999"], "--seed must be < 2**63, got 99999999999999999999"),
    (["--seed", str(2**63)], f"--seed must be < 2**63, got {2**63}"),
    (["--nccl-timeout-s", str(10**10)], f"--nccl-timeout-s must be <= 10**9 (31 years), got {10**10}"),
    (["--local-batch", "100000"], "704 items over 1 ranks leave 704 per rank, fewer than one batch of 100000"),
], ids=["image size 65", "hidden 100 heads 7", "seed 1e20", "seed 2**63", "nccl timeout", "batch > data"])
def test_a_setting_that_fails_later_is_refused_before_run_json(tmp_path, capsys, args, message):
    run = tmp_path / "run"
    assert main(["--run-dir", str(run), *SMALL, *args]) == 2
    assert one_error(capsys) == f"error: {message}"
    assert not run.exists()  # no run.json of a run that never trained, not even its folder


def test_a_seed_above_18282_trains(tmp_path):
    """The per-step generator's seed mixes (seed, rank, step, micro) in a Python int: from seed 18283 on it
    passed 2**64 and every run failed at its first step ("Overflow when unpacking long long")."""
    run = tmp_path / "run"
    assert main(["--run-dir", str(run), *SMALL, "--seed", "20000"]) == 0
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_the_per_step_seed_is_unchanged_where_it_fitted_and_reduced_where_not():
    cpu = torch.device("cpu")
    for seed, rank, step, micro in ((0, 0, 0, 0), (7, 1, 123, 2), (18282, 7, 10**5, 3)):
        mix = ((seed * 1_000_003 + rank) * 1_000_003 + step) * 1_009 + micro
        assert mix < 2**64
        assert step_generator(seed, rank, step, micro, cpu).initial_seed() == mix
    biggest = flags.INT_MAX["seed"][0]
    assert biggest == 2**63 - 1
    step_generator(biggest, 1023, 10**9, 10**3, cpu)  # the largest seed --seed accepts is one torch takes
    torch.manual_seed(biggest)


def test_help_shows_every_default_and_no_default_none() -> None:
    """--steps, --precision, ... had no help text, so argparse showed no default; --workers said its default
    twice ('... otherwise) (default: None)'); the required --run-dir showed '(default: None)'."""
    from xdimo.train.flags import parser

    text = parser().format_help()
    assert "(default: None)" not in text
    for flag, default in (("--steps", "100"), ("--precision", "bf16"), ("--local-batch", "1"),
                          ("--frames", "16"), ("--image-size", "256"), ("--lr", "0.0001"), ("--seed", "0")):
        block = text.split(f"  {flag} ", 1)[1].split("\n  --", 1)[0]
        assert f"(default: {default})" in " ".join(block.split()), flag


def test_a_checkpoint_save_that_fails_leaves_no_half_file_and_keeps_the_last(tmp_path, monkeypatch) -> None:
    """A full disk mid-save left checkpoints/last.tmp behind and ended in an OS traceback."""
    import errno

    import torch
    from torch import nn

    from xdimo.errors import XdimoError
    from xdimo.train import checkpoint
    from xdimo.train.distributed import Dist
    from xdimo.train.optim import Ema

    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    d = Dist(rank=0, local_rank=0, world=1, local_world=1, device=torch.device("cpu"))
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt = checkpoint.CheckpointFile(path)
    checkpoint.save_checkpoint(ckpt, 1, 1.0, model, opt, Ema(model, 0.9), d)
    good = path.read_bytes()

    written = []

    def full_disk(state, target):
        target.write(b"half a checkpoint")
        written.append(target)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(XdimoError, match=r"cannot save checkpoint .*No space left on device.*previous one"):
        checkpoint.save_checkpoint(ckpt, 2, 2.0, model, opt, Ema(model, 0.9), d)
    assert not path.with_suffix(".tmp").exists() and path.read_bytes() == good
    assert written[0].closed  # closed before the unlink: on a full disk an open file frees no room

    # torch's own words for a full disk name no cause ("unexpected pos"): the folder's state says it
    def torch_full_disk(state, target):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 2274432 vs 2274384")

    monkeypatch.setattr(checkpoint.torch, "save", torch_full_disk)
    monkeypatch.setattr(checkpoint, "no_room", lambda folder: "Disk quota exceeded")
    with pytest.raises(XdimoError, match=r"^cannot save checkpoint .*last.pt: Disk quota exceeded \(the previous"):
        checkpoint.save_checkpoint(ckpt, 3, 3.0, model, opt, Ema(model, 0.9), d)
    assert path.read_bytes() == good
