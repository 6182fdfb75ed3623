"""A checkpoint save that fails on rank 0 (a full disk, a quota) ends every rank of a torchrun job at once: one
`error:` line from rank 0 naming the cause, a non-zero exit, the previous checkpoint kept.

The other ranks used to wait in the save's closing barrier, which rank 0 never reached: under gloo they died of
"Connection closed by peer" with a traceback each as rank 0 exited (measured: about 1 s, no hang); under NCCL, ranks
on another node than rank 0's may wait out the process group's timeout (30 min; not measured, no GPU here). Now
every rank votes on the save's outcome on the flag group, as they vote on a stop signal.

The full disk is /dev/full behind checkpoints/last.tmp (the kernel answers every write with ENOSPC): only rank 0
writes there, and the check of the run's files at the start lets a symlink to a device through.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from tests.conftest import REPO
from xdimo.schedulers.local_runner import kill_tree

pytestmark = pytest.mark.slow

SMALL = ["--model", "Latte-T/2", "--log-every", "1", "--frames", "4", "--image-size", "64", "--local-batch", "2",
         "--precision", "fp32", "--compile", "off"]
ENDED_WITHIN_S = 45  # a rank left in the barrier would wait out gloo's 30 min timeout
FULL = "No space left on device"


def _cmd(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "xdimo.train",
            "--run-dir", str(run_dir), *SMALL, *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("XDIMO_JOB_ID", None)
    return env


def _step_saved(run_dir: Path) -> int:
    return int(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["step"])


@pytest.fixture(scope="module")
def saved_at_step_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-rank run that saved its checkpoint at step 2 (the previous one each test's failed save must keep)."""
    run_dir = tmp_path_factory.mktemp("base") / "run"
    proc = subprocess.run(_cmd(run_dir, "--steps", "2"), env=_env(), capture_output=True, text=True, timeout=300,
                          cwd=run_dir.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _resumable_copy(saved: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(saved, run_dir)
    return run_dir


def _full_disk_for_checkpoints(run_dir: Path) -> None:
    (run_dir / "checkpoints" / "last.tmp").symlink_to("/dev/full")


def _check_ended_as_one_error(stderr: str, run_dir: Path, returncode: int) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-4000:]
    assert errors[0].startswith(f"error: cannot save checkpoint {run_dir / 'checkpoints' / 'last.pt'}: ")
    assert FULL in errors[0] and errors[0].endswith("(the previous one, if any, is kept)")
    # no rank's traceback (torchrun prefixes a worker's with [rankN]:), none aborted at its exit
    assert "[rank" not in stderr and "terminate called" not in stderr, stderr[-4000:]
    assert returncode != 0 and re.search(r"exitcode\s*:\s*2 ", stderr), stderr[-4000:]  # torchrun's summary
    assert _step_saved(run_dir) == 2  # the previous checkpoint, whole
    assert not (run_dir / "checkpoints" / "last.tmp").exists()


def test_a_failed_save_at_the_end_ends_every_rank_with_one_error_line(saved_at_step_2: Path, tmp_path: Path) -> None:
    run_dir = _resumable_copy(saved_at_step_2, tmp_path)
    _full_disk_for_checkpoints(run_dir)
    proc = subprocess.run(_cmd(run_dir, "--steps", "3", "--resume"), env=_env(), capture_output=True, text=True,
                          timeout=ENDED_WITHIN_S + 15, cwd=tmp_path)  # + start-up (8 s on 2 cores) and one step
    _check_ended_as_one_error(proc.stderr, run_dir, proc.returncode)


def test_a_stop_signals_checkpoint_that_fails_ends_the_same_way(saved_at_step_2: Path, tmp_path: Path) -> None:
    """SIGUSR1 (a scheduler's warning before its kill) asks for a checkpoint; the disk is full by then."""
    run_dir = _resumable_copy(saved_at_step_2, tmp_path)
    proc = subprocess.Popen(_cmd(run_dir, "--steps", "100000", "--resume"), env=_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        metrics = run_dir / "metrics.jsonl"
        deadline = time.monotonic() + 180
        while len(metrics.read_text().splitlines()) < 4:  # the base run's 2 rows, then this run's
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the training never logged"
            time.sleep(0.1)
        _full_disk_for_checkpoints(run_dir)
        for worker in psutil.Process(proc.pid).children():  # the ranks (torchrun itself would die of SIGUSR1)
            worker.send_signal(signal.SIGUSR1)
        _, stderr = proc.communicate(timeout=ENDED_WITHIN_S)
    finally:  # on a failure, leave no rank behind (torchrun starts them in sessions of their own)
        kill_tree(proc.pid)
    _check_ended_as_one_error(stderr, run_dir, proc.returncode)


def test_a_folder_where_the_save_writes_is_one_error_line_and_stays(tmp_path: Path) -> None:
    """A folder made at checkpoints/last.tmp while the run trained (the start refuses one there): its unlink failed
    too, and an IsADirectoryError traceback replaced the save's error line."""
    from torch import nn

    from xdimo.errors import XdimoError
    from xdimo.train import checkpoint
    from xdimo.train.distributed import Dist
    from xdimo.train.optim import Ema

    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    d = Dist(rank=0, local_rank=0, world=1, local_world=1, device=torch.device("cpu"))
    path = tmp_path / "checkpoints" / "last.pt"
    path.with_suffix(".tmp").mkdir(parents=True)
    with pytest.raises(XdimoError, match=r"^cannot save checkpoint .*last.pt: .*Is a directory.* is kept\)$"):
        checkpoint.save_checkpoint(checkpoint.CheckpointFile(path), 1, 1.0, model, opt, Ema(model, 0.9), d)
    assert path.with_suffix(".tmp").is_dir() and not path.exists()
