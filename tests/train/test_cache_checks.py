"""A latent cache is trained with the stride it was built for, refuses clips it cannot give, and a damaged cache
is refused when it is opened, naming the file (not hours later in a loader worker)."""

from __future__ import annotations

import json

import conftest_data as cd
import numpy as np
import pytest

from xdimo.errors import XdimoError
from xdimo.train.__main__ import main
from xdimo.train.data import open_dataset
from xdimo.train.latents import LatentCache

SMALL = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--local-batch", "2", "--precision", "fp32",
         "--compile", "off", "--parallel", "single", "--workers", "0"]


def _with_index(root, **changes):
    raw = json.loads((root / "index.json").read_text())
    (root / "index.json").write_text(json.dumps({**raw, **changes}))
    return root


def test_the_cache_stride_is_used(tmp_path) -> None:
    root = _with_index(cd.write_fake_cache(tmp_path / "c", [60, 60]), stride=1)
    ds = open_dataset(str(root), frames=16, latent_size=8, channels=4)
    assert ds.stride == 1
    for epoch in range(8):  # a stride-1 window: 16 consecutive frames
        planned = ds.plan((0, epoch, 0))[1]
        assert np.diff(planned).tolist() == [1] * 15
    assert open_dataset(str(root), 16, 8, 4, stride=3).stride == 3  # an explicit stride still wins
    assert LatentCache(_with_index(root, stride=2)).stride == 2


def test_training_records_the_cache_stride(tmp_path) -> None:
    root = _with_index(cd.write_fake_cache(tmp_path / "c", [20] * 4), stride=2)
    assert main(["--run-dir", str(tmp_path / "run"), "--steps", "1", "--data", str(root), *SMALL]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data_stride"] == 2


def test_more_frames_than_the_longest_video_is_refused(tmp_path, capsys) -> None:
    root = cd.write_fake_cache(tmp_path / "c", [3, 3])
    with pytest.raises(XdimoError, match="--frames 4 is more than the longest video .* holds .3 frames"):
        open_dataset(str(root), frames=4, latent_size=8, channels=4)
    assert main(["--run-dir", str(tmp_path / "run"), "--steps", "1", "--data", str(root), *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--frames 4" in err[0]
    assert not (tmp_path / "run" / "run.json").exists()


def _damage(root, how: str) -> None:
    path = root / "latents" / "000001.npy"
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif how == "garbage":
        path.write_bytes(b"not a numpy file")
    elif how == "shape":
        np.save(path, np.zeros((20, 2, 4, 8, 7), np.float32))
    elif how == "frames":
        np.save(path, np.zeros((19, 2, 4, 8, 8), np.float32))


@pytest.mark.parametrize("how", ["missing", "truncated", "garbage", "shape", "frames"])
def test_a_damaged_cache_is_refused_at_open_naming_the_file(tmp_path, how, capsys) -> None:
    root = cd.write_fake_cache(tmp_path / "c", [20] * 4)
    _damage(root, how)
    with pytest.raises(XdimoError, match=r"damaged latent cache .*latents/000001.npy \(of v1.mp4\)"):
        LatentCache(root)
    assert main(["--run-dir", str(tmp_path / "run"), "--steps", "1", "--data", str(root), *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: damaged latent cache") and "000001.npy" in err[0]


def test_an_empty_cache_is_refused(tmp_path) -> None:
    root = cd.write_fake_cache(tmp_path / "c", [])
    with pytest.raises(XdimoError, match="holds no videos"):
        open_dataset(str(root), 4, 8, 4)


def test_the_files_are_checked_once_per_node(tmp_path, monkeypatch) -> None:
    """Local rank 0 checks every file's header; the node's other ranks do not open thousands of files again."""
    root = cd.write_fake_cache(tmp_path / "c", [20] * 4)
    _damage(root, "garbage")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert len(LatentCache(root)) == 4
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(XdimoError, match="damaged latent cache"):
        LatentCache(root)
