"""A workspace moved (`mv ws1 ws2`, same file system) while its run trains: the workload's MetricsWriter keeps
writing into the run folder it started in, now under the new root, and never makes the old path again (so the
figures stay in one folder, and README's `ln -s NEW OLD` stays possible). A folder removed meanwhile is made again
where the run started, as the writer always did."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xdimo.errors import XdimoError
from xdimo.train.metrics_writer import METRICS, RUN_JSON, MetricsWriter

ROW = {"step": 2, "loss": 1.0, "grad_norm": 0.5, "lr": 1e-4, "steps_per_s": 1.0, "samples_per_s": 2.0,
       "tflops_per_gpu": 0.1, "mfu": None, "mem_peak_gib": 0.3}


def steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / METRICS).read_text().splitlines()]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_every_row_after_a_move_lands_in_the_moved_folder(tmp_path: Path) -> None:
    old, new = tmp_path / "ws1", tmp_path / "ws2"
    before = open_fds()
    writer = MetricsWriter(old / "logs" / "r")
    writer.write_run({"run_id": "r", "attempt": 1})
    writer.log(ROW)
    old.rename(new)  # between two rows
    writer.log({**ROW, "step": 4})
    writer.write_run({"run_id": "r", "attempt": 2})  # a rewrite of run.json goes there too, whole
    writer.log({**ROW, "step": 6})
    moved = new / "logs" / "r"
    assert steps(moved) == [2, 4, 6]
    assert json.loads((moved / RUN_JSON).read_text())["attempt"] == 2
    assert sorted(p.name for p in moved.iterdir()) == [METRICS, RUN_JSON]  # no run.json.tmp left
    assert not old.exists()  # not made again: `ln -s ws2 ws1` can still be made
    writer.close()
    writer.close()  # safe to repeat
    assert open_fds() == before  # the folder's descriptor is closed


def test_a_failed_write_after_a_move_names_the_folder_where_it_is_now(tmp_path: Path) -> None:
    old, new = tmp_path / "ws1", tmp_path / "ws2"
    writer = MetricsWriter(old / "logs" / "r")
    writer.log(ROW)
    old.rename(new)
    moved = new / "logs" / "r"
    (moved / "run.json.tmp").symlink_to("/dev/full")
    with pytest.raises(XdimoError) as caught:
        writer.write_run({"run_id": "r"})
    assert str(caught.value) == f"cannot write {moved / RUN_JSON}: No space left on device"
    assert sorted(p.name for p in moved.iterdir()) == [METRICS]
    assert not old.exists()
    writer.close()


def test_a_run_folder_removed_while_the_run_trains_is_made_again(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "ws" / "logs" / "r"
    writer = MetricsWriter(run_dir)
    writer.log(ROW)
    (run_dir / METRICS).unlink()
    run_dir.rmdir()
    writer.log({**ROW, "step": 4})
    assert steps(run_dir) == [4]
    assert f"warning: the run folder {run_dir} was removed while the run trained" in capsys.readouterr().err
    writer.close()


def test_the_folder_is_made_at_the_first_write_not_before(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "ws" / "logs" / "r")
    assert not (tmp_path / "ws").exists()  # a run refused before its first write leaves nothing
    writer.write_run({"run_id": "r"})
    assert (tmp_path / "ws" / "logs" / "r" / RUN_JSON).exists()
    writer.close()
