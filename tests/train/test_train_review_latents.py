"""python -m xdimo.train.latents checks its flags before reading any video: a bad one is one `error:` line, exit 2,
and nothing is left behind (no <out>.partial/); a cache no model could train on (--size 60) is not built."""

from __future__ import annotations

import pytest
import torch

from xdimo.train.latents import main


@pytest.fixture
def paths(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not a video")  # reading it would fail: a check that reads it comes too late
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.json").write_text("{}")
    return tmp_path, ["--videos", str(videos), "--out", str(tmp_path / "cache"), "--vae", str(vae)]


def _refused(tmp_path, capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae", "videos"]  # no cache, no cache.partial


@pytest.mark.parametrize(("flags", "says"), [
    (["--batch", "0"], "--batch must be an integer >= 1, got 0"),
    (["--workers", "-1"], "--workers must be an integer >= 0, got -1"),
    (["--frames", "0"], "--frames must be an integer >= 1, got 0"),
    (["--stride", "0"], "--stride must be an integer >= 1, got 0"),
    (["--size", "60"], "--size must be a multiple of 16"),
    (["--size", "0"], "--size must be an integer >= 16"),
    (["--scale", "0"], "--scale must be a finite number > 0"),
    (["--device", "tpu"], "--device"),
])
def test_a_bad_flag_is_one_line_exit_2_before_any_video_is_read(paths, capsys, flags, says):
    tmp_path, argv = paths
    _refused(tmp_path, capsys, [*argv, *flags], says)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a torch without CUDA")
def test_cuda_on_a_cpu_torch_is_one_line(paths, capsys):
    tmp_path, argv = paths
    _refused(tmp_path, capsys, [*argv, "--device", "cuda"], "no CUDA GPU")


def test_a_missing_vae_leaves_no_partial_folder(paths, capsys):
    tmp_path, argv = paths
    _refused(tmp_path, capsys, [*argv[:-1], str(tmp_path / "nonexist")], "no VAE at")


def test_an_argument_error_is_one_line_exit_2(paths, capsys):
    tmp_path, argv = paths
    with pytest.raises(SystemExit) as e:
        main([*argv, "--dtype", "int8"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --dtype: invalid choice"), err
