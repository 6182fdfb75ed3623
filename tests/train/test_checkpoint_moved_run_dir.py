"""A workspace moved (`mv ws1 ws2`, same file system) while its run trains: the checkpoint is saved through the
checkpoint folder held open since the run's start (checkpoint.CheckpointFile), so it lands in the moved folder and the
old path is not made again (it used to be: `mkdir -p` of the old checkpoints/ folder, a stray copy of the run that
--resume in the moved workspace never finds). A folder removed meanwhile is made again where the run started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from xdimo.errors import XdimoError
from xdimo.train import checkpoint, loop
from xdimo.train.__main__ import main
from xdimo.train.distributed import Dist
from xdimo.train.optim import Ema
from xdimo.train.run_config import TrainConfig

TINY = ["--model", "Latte-T/2", "--local-batch", "2", "--frames", "4", "--image-size", "64", "--precision", "fp32",
        "--compile", "off", "--parallel", "single", "--log-every", "1"]
ONE = Dist(rank=0, local_rank=0, world=1, local_world=1, device=torch.device("cpu"))


def save(ckpt: checkpoint.CheckpointFile, step: int, keep_earlier: bool = False) -> None:
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    checkpoint.save_checkpoint(ckpt, step, 1.0, model, opt, Ema(model, 0.9), ONE, keep_earlier=keep_earlier)


def step_in(path: Path) -> int:
    return int(torch.load(path, weights_only=False)["step"])


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_save_after_the_move_lands_in_the_moved_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "ws1", tmp_path / "ws2"
    before = open_fds()
    ckpt = checkpoint.CheckpointFile(old / "logs" / "r" / "checkpoints" / "last.pt")
    save(ckpt, 1)
    old.rename(new)
    save(ckpt, 2, keep_earlier=True)  # the earlier one kept aside in the moved folder too
    moved = new / "logs" / "r" / "checkpoints"
    assert step_in(moved / "last.pt") == 2 and step_in(moved / "last.prev-1.pt") == 1
    assert sorted(p.name for p in moved.iterdir()) == ["last.prev-1.pt", "last.pt"]  # no last.tmp left
    assert f"{moved / 'last.pt'} held an earlier run's checkpoint" in capsys.readouterr().out
    assert not old.exists()  # not made again: `ln -s ws2 ws1` can still be made
    ckpt.close()
    assert open_fds() == before


def test_a_failed_save_after_a_move_names_the_moved_checkpoint(tmp_path: Path) -> None:
    old, new = tmp_path / "ws1", tmp_path / "ws2"
    ckpt = checkpoint.CheckpointFile(old / "checkpoints" / "last.pt")
    save(ckpt, 1)
    old.rename(new)
    (new / "checkpoints" / "last.tmp").symlink_to("/dev/full")
    with pytest.raises(XdimoError) as caught:
        save(ckpt, 2)
    assert str(caught.value).startswith(f"cannot save checkpoint {new / 'checkpoints' / 'last.pt'}: ")
    assert step_in(new / "checkpoints" / "last.pt") == 1 and not old.exists()
    ckpt.close()


def test_a_checkpoint_folder_removed_while_the_run_trains_is_made_again(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run" / "checkpoints"
    ckpt = checkpoint.CheckpointFile(folder / "last.pt")
    save(ckpt, 1)
    (folder / "last.pt").unlink()
    folder.rmdir()
    save(ckpt, 2)
    assert step_in(folder / "last.pt") == 2
    assert f"warning: the checkpoint folder {folder} was removed while the run trained" in capsys.readouterr().err
    ckpt.close()


def test_the_run_holds_its_checkpoint_folder_from_its_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace moves after the first of two steps; the save at the end goes to the moved folder."""
    old, new = tmp_path / "ws1", tmp_path / "ws2"
    first_step = loop.train_step

    def then_move(cfg: TrainConfig, d: Dist, s: loop.Session, acc: loop.Interval) -> tuple[float, Tensor | None]:
        done = first_step(cfg, d, s, acc)
        if s.step == 1:
            old.rename(new)
        return done

    monkeypatch.setattr(loop, "train_step", then_move)
    assert main(["--run-dir", str(old / "logs" / "r"), "--steps", "2", *TINY]) == 0
    assert step_in(new / "logs" / "r" / "checkpoints" / "last.pt") == 2
    assert not old.exists()
