"""--resume refuses, in one line, a checkpoint written by a run of another shape (model, batch, ranks, seed),
before run.json is rewritten; a checkpoint from before checkpoints carried their settings loads as before."""

from __future__ import annotations

import json

import pytest
import torch

from xdimo.train.__main__ import main

BASE = ["--frames", "4", "--image-size", "64", "--precision", "fp32", "--compile", "off", "--parallel", "single",
        "--log-every", "1"]
TINY = ["--model", "Latte-T/2", "--local-batch", "2", *BASE]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    assert main(["--run-dir", str(run), "--steps", "2", *TINY]) == 0
    return run


def _copy(trained, tmp_path, drop_meta: bool = False):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    if drop_meta:  # what a checkpoint written before this change holds
        path = run / "checkpoints" / "last.pt"
        state = torch.load(path, weights_only=False)
        del state["meta"]
        torch.save(state, path)
    return run


def test_the_checkpoint_records_the_run_shape(trained):
    meta = torch.load(trained / "checkpoints" / "last.pt", weights_only=False)["meta"]
    assert meta["model"] == "Latte-T/2" and meta["local_batch"] == 2 and meta["world_size"] == 1
    assert meta["seed"] == 0 and meta["moe"] is None and meta["frames"] == 4


@pytest.mark.parametrize(("flags", "says"), [
    (["--model", "Latte-S/2", "--depth", "2", "--hidden", "24", "--heads", "6", "--local-batch", "2", *BASE],
     "model Latte-T/2 (now Latte-S/2)"),
    ([*TINY, "--moe", "4E2A"], "moe None (now 4E2A)"),
    ([*TINY, "--local-batch", "1"], "local_batch 2 (now 1)"),
    ([*TINY, "--seed", "7"], "seed 0 (now 7)"),
])
def test_a_checkpoint_of_another_run_is_refused_in_one_line(trained, tmp_path, capsys, flags, says):
    run = _copy(trained, tmp_path)
    before = (run / "run.json").read_text()
    assert main(["--run-dir", str(run), "--steps", "4", "--resume", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is of another run" in err[0] and says in err[0], err
    assert (run / "run.json").read_text() == before  # refused before run.json is rewritten


def test_an_old_checkpoint_of_another_shape_is_one_line(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path, drop_meta=True)
    flags = ["--model", "Latte-S/2", "--depth", "2", "--hidden", "24", "--heads", "6", "--local-batch", "2", *BASE]
    assert main(["--run-dir", str(run), "--steps", "4", "--resume", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit this model" in err[0] and "size mismatch" in err[0], err


def test_an_old_checkpoint_of_the_same_shape_resumes(trained, tmp_path):
    run = _copy(trained, tmp_path, drop_meta=True)
    assert main(["--run-dir", str(run), "--steps", "3", "--resume", *TINY]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


def test_an_unreadable_checkpoint_is_one_line(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    (run / "checkpoints" / "last.pt").write_bytes(b"\x80garbage")
    assert main(["--run-dir", str(run), "--steps", "3", "--resume", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read checkpoint"), err


def test_a_fresh_start_keeps_the_earlier_checkpoint_aside(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    ckpts = run / "checkpoints"
    before = (ckpts / "last.pt").read_bytes()
    (ckpts / "last.prev-1.pt").write_bytes(b"an even earlier one")  # taken: the next free number is used
    assert main(["--run-dir", str(run), "--steps", "1", *TINY]) == 0  # no --resume: starts at step 0
    assert (ckpts / "last.prev-2.pt").read_bytes() == before
    assert (ckpts / "last.prev-1.pt").read_bytes() == b"an even earlier one"
    assert torch.load(ckpts / "last.pt", weights_only=False)["step"] == 1  # the new run's own
    assert "kept as last.prev-2.pt" in capsys.readouterr().out


def test_a_fresh_start_that_dies_before_its_first_save_leaves_the_checkpoint_where_resume_looks(trained, tmp_path,
                                                                                               monkeypatch):
    from xdimo.train import loop

    run = _copy(trained, tmp_path)
    before = (run / "checkpoints" / "last.pt").read_bytes()

    def no_model(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(loop, "build", no_model)
    with pytest.raises(RuntimeError):
        main(["--run-dir", str(run), "--steps", "1", *TINY])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
