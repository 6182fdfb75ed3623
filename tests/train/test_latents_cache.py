"""Reading a latent cache (hand-written, no VAE needed) and the pure parts of building one."""

from __future__ import annotations

import json

import conftest_data as cd
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from xdimo.errors import XdimoError
from xdimo.train.latents import LatentCache, plan_chunks, prepare_partial, read_index


def test_clip_is_the_planned_rows_of_the_mean(tmp_path) -> None:
    ds = LatentCache(cd.write_fake_cache(tmp_path / "c", [60, 30]), frames=16, stride=3, flip=False,
                     sample=False)
    assert len(ds) == 2 and (ds.channels, ds.latent_size) == (4, 8)
    for key in [(0, e, 0) for e in range(5)] + [1]:
        video, planned, flipped, _ = ds.plan(key)
        clip = ds[key]
        assert clip.shape == (16, 4, 8, 8) and clip.dtype == torch.float32 and not flipped
        assert clip[:, 0, 0, 0].tolist() == planned.tolist()  # the fake latent of frame t holds t
    assert ds.plan(1)[1].tolist() == np.linspace(0, 29, 16, dtype=int).tolist()  # short: all 30 frames


def test_flip_reverses_width_per_clip(tmp_path) -> None:
    ds = LatentCache(cd.write_fake_cache(tmp_path / "c", [60]), sample=False)
    seen = []
    for epoch in range(16):
        key = (0, epoch, 0)
        _, planned, flipped, _ = ds.plan(key)
        w_ramp = ds[key][:, 0, 0, :] - torch.tensor(planned, dtype=torch.float32)[:, None]
        ascending = bool((w_ramp.diff(dim=-1) > 0).all())
        assert ascending != flipped
        seen.append(flipped)
    assert any(seen) and not all(seen)


def test_sample_draws_around_the_mean_reproducibly(tmp_path) -> None:
    ds = LatentCache(cd.write_fake_cache(tmp_path / "c", [60], std=0.5), flip=False)
    mean = LatentCache(tmp_path / "c", flip=False, sample=False)
    a, b, c = ds[(0, 3, 1)], ds[(0, 3, 1)], ds[(0, 4, 1)]
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = a - mean[(0, 3, 1)]
    assert abs(float(noise.std()) - 0.5) < 0.02 and abs(float(noise.mean())) < 0.02


def test_zero_std_sample_is_the_mean(tmp_path) -> None:
    root = cd.write_fake_cache(tmp_path / "c", [50], std=0.0)
    assert torch.equal(LatentCache(root)[(0, 2, 0)], LatentCache(root, sample=False)[(0, 2, 0)])


def test_float16_cache_reads_as_float32(tmp_path) -> None:
    ds = LatentCache(cd.write_fake_cache(tmp_path / "c", [50], dtype="float16"), sample=False)
    assert ds[0].dtype == torch.float32


def test_missing_index_is_not_a_cache(tmp_path) -> None:
    with pytest.raises(XdimoError, match="not a finished latent cache"):
        LatentCache(tmp_path)


def test_bad_index_and_wrong_version(tmp_path) -> None:
    root = cd.write_fake_cache(tmp_path / "c", [50])
    raw = json.loads((root / "index.json").read_text())
    (root / "index.json").write_text(json.dumps({**raw, "version": 99}))
    with pytest.raises(XdimoError, match="version 99"):
        read_index(root)
    (root / "index.json").write_text("{not json")
    with pytest.raises(XdimoError, match="unreadable"):
        read_index(root)
    (root / "index.json").write_text(json.dumps({k: v for k, v in raw.items() if k != "channels"}))
    with pytest.raises(XdimoError, match="unreadable"):
        read_index(root)


@given(lengths=st.lists(st.integers(1, 100), min_size=1, max_size=6), batch=st.integers(1, 40),
       skip=st.sets(st.integers(0, 5)))
def test_chunks_cover_each_video_once_in_order(lengths: list[int], batch: int, skip: set[int]) -> None:
    chunks = plan_chunks(lengths, batch, skip)
    for v, n in enumerate(lengths):
        mine = [c for c in chunks if c.video == v]
        if v in skip:
            assert not mine
            continue
        assert [c.start for c in mine] == list(range(0, n, batch))
        assert all(0 < c.stop - c.start <= batch for c in mine) and mine[-1].stop == n
        assert [c.last for c in mine] == [False] * (len(mine) - 1) + [True]
    assert [c.video for c in chunks] == sorted(c.video for c in chunks)


def test_partial_build_kept_only_with_the_same_settings(tmp_path) -> None:
    partial = tmp_path / "out.partial"
    assert prepare_partial(partial, {"a": 1}) == set()
    np.save(partial / "latents" / "000002.npy", np.zeros(1))
    (partial / "latents" / "000003.npy.tmp").write_bytes(b"half")  # a write that never finished
    assert prepare_partial(partial, {"a": 1}) == {2}
    assert prepare_partial(partial, {"a": 2}) == set()
    assert not (partial / "latents" / "000002.npy").exists()
