"""The optional TensorBoard and W&B (offline) sinks of ``python -m xdimo.train``: real tiny CPU runs read back
with each tool's own reader, off by default, a missing package is a one-line error, a signal stop closes them,
and ranks other than 0 open nothing."""

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xdimo.train.__main__ import main
from xdimo.train.metrics_writer import TRACK_INSTALL, MetricsWriter, Trackers, tracker_scalars

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--steps", "6", "--log-every", "2",
        "--local-batch", "2", "--precision", "fp32", "--compile", "off", "--parallel", "single"]
DENSE_TAGS = {"train/loss", "train/learning_rate", "train/grad_norm", "train/samples_per_second",
              "train/steps_per_second", "train/tokens_per_second", "train/mem_peak_gib"}  # no mfu: no CPU peak


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _needs(module: str) -> None:
    pytest.importorskip(module, reason=f"{module} is not installed ({TRACK_INSTALL})")


# --------------------------------------------------------------------------------------------- readers

def _tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _wandb_records(path: Path):
    """The records of an offline run's .wandb file: a 7-byte header (":W&B", magic, version), then LevelDB-style
    log blocks of 32 KiB whose chunks have a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle,
    4 last). wandb no longer ships a reader, so the test carries this small one."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunk = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # block trailer padding
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def _wandb_run(run_dir: Path) -> dict:
    """The offline run under run_dir: its run record, history rows by step, final summary, and record kinds."""
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    out: dict = {"history": {}, "summary": {}, "kinds": []}
    for record in _wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        out["kinds"].append(kind)
        if kind == "run":
            out["run"] = record.run
        elif kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            out["history"][row["_step"]] = row
        elif kind == "summary":
            out["summary"].update({_key(u): json.loads(u.value_json) for u in record.summary.update})
    return out


# --------------------------------------------------------------------------------------------- pure parts

def test_tracker_scalars_use_the_seed_names_and_drop_nulls():
    row = {"step": 4, "loss": 0.5, "lr": 1e-4, "grad_norm": 0.3, "samples_per_s": 8.0, "steps_per_s": 4.0,
           "tokens_per_s": 512.0, "mfu": None, "mem_peak_gib": 1.5, "elapsed_s": 2.0, "warmup": True}
    assert tracker_scalars(row) == {"train/loss": 0.5, "train/learning_rate": 1e-4, "train/grad_norm": 0.3,
                                    "train/samples_per_second": 8.0, "train/steps_per_second": 4.0,
                                    "train/tokens_per_second": 512.0, "train/mem_peak_gib": 1.5}
    moe = tracker_scalars({**row, "mfu": 0.4, "moe_balance": 1.1, "grad_norm": float("nan")})
    assert moe["train/mfu"] == 0.4 and moe["train/moe_balance"] == 1.1 and "train/grad_norm" not in moe


class _Broken:
    def __init__(self):
        self.closed = False

    def log(self, scalars, step):
        raise RuntimeError("disk full")

    def close(self):
        self.closed = True


def test_a_failing_sink_is_dropped_and_metrics_jsonl_goes_on(tmp_path, capsys):
    sink = _Broken()
    writer = MetricsWriter(tmp_path, sinks=[sink])
    row = {"step": 2, "loss": 1.0, "grad_norm": 0.5, "lr": 1e-4, "steps_per_s": 1.0, "samples_per_s": 2.0,
           "tflops_per_gpu": 0.1, "mfu": None, "mem_peak_gib": 0.3}
    writer.log(row)
    writer.log({**row, "step": 4})
    assert [r["step"] for r in _rows(tmp_path)] == [2, 4]
    assert writer.sinks == [] and "_Broken failed (disk full)" in capsys.readouterr().err
    writer.close()
    assert not sink.closed  # dropped sinks are not touched again


def test_other_ranks_open_no_tracker(tmp_path):
    writer = MetricsWriter(tmp_path / "run", enabled=False, trackers=Trackers(tensorboard=True, wandb=True))
    writer.open_trackers({"run_id": "x"})
    assert writer.sinks == [] and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------- real runs

def test_flags_off_write_neither(tmp_path):
    assert main(["--run-dir", str(tmp_path), *TINY]) == 0
    assert len(_rows(tmp_path)) == 3
    assert not (tmp_path / "tensorboard").exists() and not (tmp_path / "wandb").exists()


def test_tensorboard_events_read_back(tmp_path):
    _needs("tensorboard")
    assert main(["--run-dir", str(tmp_path), *TINY, "--moe", "2E1A", "--tensorboard"]) == 0
    rows = _rows(tmp_path)
    scalars = _tensorboard_scalars(tmp_path / "tensorboard")
    assert set(scalars) == DENSE_TAGS | {"train/moe_balance"}
    for tag in scalars:
        assert [step for step, _ in scalars[tag]] == [2, 4, 6]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([r["loss"] for r in rows], rel=1e-6)
    assert [v for _, v in scalars["train/moe_balance"]] == pytest.approx([r["moe_balance"] for r in rows],
                                                                         rel=1e-6)


def test_wandb_writes_an_offline_run_under_the_run_dir(tmp_path, monkeypatch):
    _needs("wandb")
    monkeypatch.setenv("WANDB_MODE", "online")  # the workload must force offline whatever the job says
    monkeypatch.setenv("WANDB_SILENT", "false")
    monkeypatch.setenv("XDIMO_RUN_ID", "t-wandb123")
    assert main(["--run-dir", str(tmp_path), *TINY, "--wandb", "--wandb-project", "study"]) == 0
    assert os.environ["WANDB_MODE"] == "offline"
    rows = _rows(tmp_path)
    run = _wandb_run(tmp_path)
    assert run["run"].project == "study" and run["run"].display_name == "t-wandb123"
    config = {_key(u): json.loads(u.value_json) for u in run["run"].config.update}
    info = json.loads((tmp_path / "run.json").read_text())
    assert config["model"] == info["model"] == "Latte-T/2" and config["run_id"] == "t-wandb123"
    assert sorted(run["history"]) == [2, 4, 6]
    for row in rows:
        logged = run["history"][row["step"]]
        assert set(logged) >= DENSE_TAGS and "train/mfu" not in logged
        assert logged["train/loss"] == pytest.approx(row["loss"])
        assert logged["train/learning_rate"] == pytest.approx(row["lr"])
    assert run["summary"]["train/loss"] == pytest.approx(rows[-1]["loss"])
    assert run["kinds"][-1] == "exit"  # finished cleanly


@pytest.mark.parametrize(("flag", "module"), [("--tensorboard", "torch.utils.tensorboard"), ("--wandb", "wandb")])
def test_a_missing_package_is_a_one_line_error_before_training(tmp_path, capsys, monkeypatch, flag, module):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError, as if not installed
    if module == "wandb":
        monkeypatch.setenv("WANDB_MODE", "offline")  # restored after the check sets it
        monkeypatch.setenv("WANDB_SILENT", "true")
    assert main(["--run-dir", str(tmp_path / "run"), *TINY, flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {flag} needs") and TRACK_INSTALL in err[0]
    assert not (tmp_path / "run").exists()  # nothing started


def test_sigterm_closes_both_sinks(tmp_path):
    _needs("tensorboard")
    _needs("wandb")
    cmd = [sys.executable, "-m", "xdimo.train", "--run-dir", str(tmp_path), *TINY, "--steps", "100000",
           "--tensorboard", "--wandb"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    steps = [r["step"] for r in _rows(tmp_path)]
    assert [s for s, _ in _tensorboard_scalars(tmp_path / "tensorboard")["train/loss"]] == steps
    run = _wandb_run(tmp_path)
    assert sorted(run["history"]) == steps and run["kinds"][-1] == "exit"
