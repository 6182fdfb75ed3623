"""A video that cannot be opened or decoded stops a cache build with one line naming it, or, with --skip-bad, is
left out and listed in index.json."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("decord", reason="decord is not installed (pip install 'xdimo-jobs[train]')")
pytest.importorskip("av", reason="PyAV writes the test videos (pip install av)")
pytest.importorskip("diffusers", reason="diffusers is not installed (it is in the dev extra)")

import conftest_data as cd  # noqa: E402
from test_latents_vae import SIZE, tiny_vae  # noqa: E402

from xdimo.errors import XdimoError  # noqa: E402
from xdimo.train import latents  # noqa: E402
from xdimo.train.latents import INDEX_NAME, LatentCache, build_cache, main  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("bad")
    tiny_vae().save_pretrained(tmp / "vae")
    videos = tmp / "videos"
    cd.write_video(videos / "a.mp4", 20)
    cd.write_video(videos / "c.mp4", 20)
    good = (videos / "a.mp4").read_bytes()
    (videos / "b.mp4").write_bytes(good[: len(good) // 2])  # truncated: decord cannot open it
    return {"tmp": tmp, "vae": tmp / "vae", "videos": videos}


def _args(setup, out, *more: str) -> list[str]:
    return ["--videos", str(setup["videos"]), "--out", str(out), "--vae", str(setup["vae"]), "--size", str(SIZE),
            "--workers", "0", "--device", "cpu", "--batch", "8", *more]


def test_an_unreadable_video_stops_the_build_in_one_line_naming_it(setup, tmp_path, capsys) -> None:
    out = tmp_path / "cache"
    assert main(_args(setup, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read video") and "b.mp4" in err[0], err
    assert "--skip-bad" in err[0]
    assert not out.exists()


def test_skip_bad_leaves_it_out_and_records_it(setup, tmp_path, capsys) -> None:
    out = tmp_path / "cache"
    assert main(_args(setup, out, "--skip-bad")) == 0
    index = json.loads((out / INDEX_NAME).read_text())
    assert [v["source"] for v in index["videos"]] == ["a.mp4", "c.mp4"]
    assert [s["source"] for s in index["skipped"]] == ["b.mp4"] and "b.mp4" in index["skipped"][0]["reason"]
    assert len(LatentCache(out)) == 2 and LatentCache(out)[1].shape[0] == 16
    assert "skipped: cannot read video" in capsys.readouterr().err


class _BrokenReader:
    """A reader that opens (decord read the header) but fails to decode, like a file damaged mid-stream."""

    def __init__(self, reader) -> None:
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def get_batch(self, indices):
        if indices[0] >= 8:
            raise RuntimeError("[12:00:00] src/video/video_reader.cc:300: Check failed: ret >= 0\nStack trace:\n ...")
        return self.reader.get_batch(indices)


@pytest.fixture
def c_breaks_mid_stream(setup, monkeypatch, tmp_path):
    real = latents.open_video
    monkeypatch.setattr(latents, "open_video",
                        lambda path: _BrokenReader(real(path)) if path.name == "c.mp4" else real(path))
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "c.mp4"):
        (videos / name).write_bytes((setup["videos"] / name).read_bytes())
    return videos


def test_a_decode_error_stops_the_build_naming_the_video(setup, tmp_path, c_breaks_mid_stream) -> None:
    with pytest.raises(XdimoError, match=r"cannot decode video .*c\.mp4 \(frames 8-15\): \[12:00:00\].*--skip-bad"
                       ) as e:
        build_cache(c_breaks_mid_stream, tmp_path / "cache", setup["vae"], size=SIZE, batch=8, workers=0,
                    log=lambda s: None)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_bad_leaves_out_a_video_that_fails_to_decode(setup, tmp_path, c_breaks_mid_stream, workers) -> None:
    out = build_cache(c_breaks_mid_stream, tmp_path / "cache", setup["vae"], size=SIZE, batch=8, workers=workers,
                      skip_bad=True, log=lambda s: None)
    index = json.loads((out / INDEX_NAME).read_text())
    assert [v["source"] for v in index["videos"]] == ["a.mp4"]
    assert [s["source"] for s in index["skipped"]] == ["c.mp4"]
    assert not (out / "latents" / "000001.npy").exists()
    assert isinstance(LatentCache(out)[0], torch.Tensor)


def test_read_frames_names_a_video_it_cannot_decode(setup, monkeypatch) -> None:
    from xdimo.train import data

    real = data.open_video
    monkeypatch.setattr(data, "open_video", lambda path: _BrokenReader(real(path)))
    with pytest.raises(XdimoError, match=r"cannot decode video .*a\.mp4: \[12:00:00\]"):
        data.read_frames(setup["videos"] / "a.mp4", [8, 9])
