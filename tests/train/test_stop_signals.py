"""Stop signals sent to the whole process group (a local kill, Slurm, LSF's bkill, Ctrl-C) reach the data loader
workers too: the run still writes its checkpoint and exits 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import conftest_data as cd
import pytest

from xdimo.train.__main__ import main

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--local-batch", "2", "--precision", "fp32",
         "--compile", "off", "--parallel", "single", "--log-every", "1"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("XDIMO_JOB_ID", None)
    return env


def _wait_for_rows(proc: subprocess.Popen, metrics: Path, n: int) -> None:
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= n):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_process_group_with_loader_workers_checkpoints(tmp_path, sig):
    cache = cd.write_fake_cache(tmp_path / "cache", [20] * 8, std=0.1)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "xdimo.train", "--run-dir", str(run), "--steps", "100000", "--data", str(cache),
           "--workers", "2", *SMALL]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as the local runner starts a run
    try:
        _wait_for_rows(proc, run / "metrics.jsonl", 3)
        os.killpg(proc.pid, sig)  # what schedulers/local_runner.py's kill does: workers get it too
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert code == 128 + sig, err[-3000:]
    assert "exited unexpectedly" not in err and "killed by signal" not in err
    assert (run / "checkpoints" / "last.pt").is_file()


def test_a_step_lost_to_a_dead_worker_after_the_signal_still_checkpoints(tmp_path, monkeypatch, capsys):
    """A worker the signal reached before it could ignore it fails the step that is under way: that step is
    abandoned and the checkpoint holds the steps before it."""
    import xdimo.train.loop as loop

    real = loop.train_step

    def dying(cfg, d, s, acc):
        if s.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by StopRequests: sets the flag
            raise RuntimeError("DataLoader worker (pid 1234) is killed by signal: Terminated.")
        return real(cfg, d, s, acc)

    monkeypatch.setattr(loop, "train_step", dying)
    assert main(["--run-dir", str(tmp_path), "--steps", "100", *SMALL]) == 128 + signal.SIGTERM
    import torch

    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["step"] == 3
    assert "step 4 abandoned" in capsys.readouterr().err


def test_a_worker_error_without_a_signal_is_not_swallowed(tmp_path, monkeypatch):
    import xdimo.train.loop as loop

    def failing(cfg, d, s, acc):
        raise RuntimeError("DataLoader worker (pid 1234) exited unexpectedly")

    monkeypatch.setattr(loop, "train_step", failing)
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        main(["--run-dir", str(tmp_path), "--steps", "5", *SMALL])


def test_workers_ignore_exactly_the_signals_the_loop_handles():
    from xdimo.train.data import STOP_SIGNALS, ignore_stop_signals
    from xdimo.train.stop import StopRequests

    assert set(STOP_SIGNALS) == set(StopRequests.SIGNALS) >= {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        ignore_stop_signals(0)
        assert all(signal.getsignal(sig) is signal.SIG_IGN for sig in STOP_SIGNALS)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
