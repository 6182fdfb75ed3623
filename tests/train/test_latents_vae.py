"""Building a latent cache with a tiny randomly initialised AutoencoderKL, and its round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("decord", reason="decord is not installed (pip install 'xdimo-jobs[train]')")
pytest.importorskip("av", reason="PyAV writes the test videos (pip install av)")
pytest.importorskip("diffusers", reason="diffusers is not installed (it is in the dev extra)")

import conftest_data as cd  # noqa: E402

from xdimo.errors import XdimoError  # noqa: E402
from xdimo.train import latents  # noqa: E402
from xdimo.train.data import open_dataset, read_frames, resize_crop  # noqa: E402
from xdimo.train.latents import INDEX_NAME, LatentCache, build_cache, encode, load_vae, main  # noqa: E402

SIZE = 32  # pixels; the tiny VAE downsamples 2x, so latents are 4 x 16 x 16


def tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=4, sample_size=SIZE)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("vae")
    tiny_vae().save_pretrained(tmp / "vae")
    videos = tmp / "videos"
    cd.write_video(videos / "a.mp4", 55)
    cd.write_video(videos / "b.mp4", 40)
    cd.write_video(videos / "c.avi", 50, codec="mpeg4")
    cache = build_cache(videos, tmp / "cache", tmp / "vae", size=SIZE, batch=16, dtype="float32", workers=0,
                        log=lambda s: None)
    return {"tmp": tmp, "vae": tmp / "vae", "videos": videos, "cache": cache}


def expected_latents(setup: dict, source: str, indices: np.ndarray, flipped: bool) -> torch.Tensor:
    """What the VAE itself gives for those frames, scaled: the reference the cache must reproduce."""
    vae = load_vae(setup["vae"], "cpu", torch.float32)
    mean, _ = encode(vae, resize_crop(read_frames(setup["videos"] / source, indices), SIZE), 0.18215)
    return mean.flip(-1) if flipped else mean


def test_index_describes_the_cache(setup) -> None:
    index = json.loads((setup["cache"] / INDEX_NAME).read_text())
    assert index["scaling_factor"] == 0.18215 and index["vae"] == str(setup["vae"])
    assert (index["channels"], index["latent_size"], index["size"]) == (4, 16, SIZE)
    assert [(v["source"], v["frames"]) for v in index["videos"]] == [("a.mp4", 55), ("b.mp4", 40),
                                                                     ("c.avi", 50)]
    for v in index["videos"]:
        assert np.load(setup["cache"] / v["file"], mmap_mode="r").shape == (v["frames"], 2, 4, 16, 16)
    assert not (setup["tmp"] / "cache.partial").exists()


@pytest.mark.parametrize("key", [(0, 0, 0), (0, 1, 0), (0, 2, 5), (1, 0, 0), (2, 3, 0), (2, 4, 1)])
def test_round_trip_cache_gives_the_vae_latents_of_the_clip(setup, key) -> None:
    ds = LatentCache(setup["cache"], frames=16, stride=3, sample=False)
    video, indices, flipped, _ = ds.plan(key)
    got = ds[key]
    want = expected_latents(setup, video.source, indices, flipped)
    assert got.shape == (16, 4, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_round_trip_with_posterior_sampling_stays_near_the_mean(setup) -> None:
    sampled, mean = LatentCache(setup["cache"]), LatentCache(setup["cache"], sample=False)
    video, indices, flipped, _ = mean.plan((0, 1, 0))
    std = np.load(setup["cache"] / video.file)[indices][:, 1]
    diff = (sampled[(0, 1, 0)] - mean[(0, 1, 0)]).numpy()
    stds = np.flip(std, -1) if flipped else std
    assert 0.5 < float((diff / stds).std()) < 1.5  # noise in units of the VAE's own posterior std


def test_float16_cache_and_parallel_decoding_match(setup) -> None:
    out = build_cache(setup["videos"], setup["tmp"] / "half", setup["vae"], size=SIZE, batch=7,
                      dtype="float16", workers=2, log=lambda s: None)
    half, full = LatentCache(out, sample=False), LatentCache(setup["cache"], sample=False)
    for key in range(3):
        torch.testing.assert_close(half[key], full[key], rtol=2e-3, atol=2e-3)
    assert np.load(out / "latents" / "000000.npy", mmap_mode="r").dtype == np.float16


def test_open_dataset_reads_the_built_cache(setup) -> None:
    ds = open_dataset(str(setup["cache"]), frames=16, latent_size=16, channels=4)
    assert ds[(1, 2, 3)].shape == (16, 4, 16, 16)


def test_crash_leaves_no_cache_and_a_rerun_resumes(setup, monkeypatch) -> None:
    out, calls, real = setup["tmp"] / "crash", [], latents.encode

    def failing(vae, pixels, scale):
        calls.append(len(pixels))
        if len(calls) == 5:  # a.mp4 is 55 frames = 4 chunks of 16: fail on b.mp4's first chunk
            raise RuntimeError("CUDA error: out of memory (simulated)")
        return real(vae, pixels, scale)

    monkeypatch.setattr(latents, "encode", failing)
    with pytest.raises(RuntimeError):
        build_cache(setup["videos"], out, setup["vae"], size=SIZE, batch=16, dtype="float32", workers=0,
                    log=lambda s: None)
    assert not out.exists()
    with pytest.raises(XdimoError, match="not a finished latent cache"):
        open_dataset(str(out.with_name("crash.partial")), 16, 16)

    calls.clear()
    monkeypatch.setattr(latents, "encode", lambda *a: calls.append(1) or real(*a))
    lines: list[str] = []
    build_cache(setup["videos"], out, setup["vae"], size=SIZE, batch=16, dtype="float32", workers=0,
                log=lines.append)
    assert "1 of 3 videos already encoded" in lines[0]
    assert len(calls) == 3 + 4  # only b (40 frames: 3 chunks) and c (50: 4 chunks) were encoded again
    for key in range(3):
        torch.testing.assert_close(LatentCache(out, sample=False)[key],
                                   LatentCache(setup["cache"], sample=False)[key])


def test_existing_cache_needs_overwrite(setup) -> None:
    out = setup["tmp"] / "again"
    build_cache(setup["videos"], out, setup["vae"], size=SIZE, workers=0, log=lambda s: None)
    with pytest.raises(XdimoError, match="already exists"):
        build_cache(setup["videos"], out, setup["vae"], size=SIZE, workers=0, log=lambda s: None)
    (setup["videos"] / "extra").mkdir(exist_ok=True)
    cd.write_video(setup["videos"] / "extra" / "d.mp4", 50)
    try:
        build_cache(setup["videos"], out, setup["vae"], size=SIZE, workers=0, overwrite=True,
                    log=lambda s: None)
    finally:
        (setup["videos"] / "extra" / "d.mp4").unlink()
    assert len(LatentCache(out)) == 4 and not out.with_name("again.old").exists()


def test_stable_diffusion_folder_with_a_vae_subfolder(setup, tmp_path) -> None:
    tiny_vae().save_pretrained(tmp_path / "sd" / "vae")
    assert load_vae(tmp_path / "sd", "cpu", torch.float32).config.latent_channels == 4


def test_missing_vae_is_a_clear_error(setup, tmp_path) -> None:
    with pytest.raises(XdimoError, match="weights cannot be downloaded"):
        load_vae(tmp_path, "cpu", torch.float32)


def test_entry_point(setup, tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["--videos", str(setup["videos"]), "--out", str(out), "--vae", str(setup["vae"]),
                 "--size", str(SIZE), "--workers", "0", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(LatentCache(out)) == 3
    assert main(["--videos", str(setup["videos"]), "--out", str(tmp_path / "x"), "--vae", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no VAE at") and len(err.strip().splitlines()) == 1
