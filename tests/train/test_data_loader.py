"""Clip sampling, the synthetic dataset, open_dataset and the distributed loader (no video decoding)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import Dataset

from xdimo.errors import XdimoError
from xdimo.train.data import (
    FFS_TRAIN_VIDEOS,
    SyntheticLatents,
    batches,
    clip_indices,
    item_rng,
    make_loader,
    open_dataset,
    set_epoch,
)

# ---------------------------------------------------------------------------------------- clip_indices

@given(n=st.integers(1, 400), frames=st.integers(2, 32), stride=st.integers(1, 6), seed=st.integers(0, 2**32))
def test_clip_indices_stay_inside_the_video_and_window(n: int, frames: int, stride: int, seed: int) -> None:
    idx = clip_indices(n, frames, stride, np.random.default_rng(seed))
    assert idx.shape == (frames,)
    assert idx.min() >= 0 and idx.max() < n
    assert (np.diff(idx) >= 0).all()
    window = frames * stride
    if n > window:
        assert idx[-1] - idx[0] == window - 1  # the whole window is spanned, as Latte's linspace does
    else:
        assert idx[0] == 0 and idx[-1] == n - 1  # short video: all of it, evenly


def test_clip_indices_f16s3_matches_latte_linspace() -> None:
    idx = clip_indices(48, 16, 3, np.random.default_rng(0))
    assert idx.tolist() == np.linspace(0, 47, 16, dtype=int).tolist()
    assert set(np.diff(idx)) == {3, 4}


def test_clip_indices_window_start_varies_and_covers_the_video() -> None:
    rng = np.random.default_rng(1)
    starts = {int(clip_indices(60, 16, 3, rng)[0]) for _ in range(400)}
    assert starts == set(range(13))  # 60 - 48 + 1 possible starts, all reached


def test_clip_indices_short_video_repeats_frames_evenly() -> None:
    assert clip_indices(4, 8, 3, np.random.default_rng(0)).tolist() == [0, 0, 0, 1, 1, 2, 2, 3]


def test_clip_indices_refuses_an_empty_video() -> None:
    with pytest.raises(XdimoError):
        clip_indices(0, 16, 3, np.random.default_rng(0))


def test_item_rng_depends_on_index_epoch_and_seed_only() -> None:
    draw = lambda key: item_rng(key)[1].random(4).tolist()  # noqa: E731
    assert draw((3, 1, 7)) == draw((3, 1, 7))
    assert len({tuple(draw(k)) for k in [(3, 1, 7), (4, 1, 7), (3, 2, 7), (3, 1, 8)]}) == 4
    assert item_rng(5)[0] == 5 and draw(5) == draw((5, 0, 0))


# ------------------------------------------------------------------------------------------- synthetic

def test_synthetic_shape_dtype_length_and_scale() -> None:
    ds = SyntheticLatents(frames=16, latent_size=32)
    x = ds[0]
    assert len(ds) == FFS_TRAIN_VIDEOS == 704
    assert x.shape == (16, 4, 32, 32) and x.dtype == torch.float32
    assert abs(float(x.std()) - 1.0) < 1e-4


def test_synthetic_is_deterministic_per_index_and_differs_between_indices() -> None:
    a, b = SyntheticLatents(8, 16), SyntheticLatents(8, 16)
    assert torch.equal(a[5], b[5]) and torch.equal(a[5], a[(5, 3, 9)])
    assert not torch.equal(a[5], a[6])


def test_synthetic_frames_are_correlated_like_video() -> None:
    x = SyntheticLatents(16, 16)[0]
    near = torch.corrcoef(torch.stack([x[0].flatten(), x[1].flatten()]))[0, 1]
    assert near > 0.9


def test_synthetic_out_of_range_index() -> None:
    with pytest.raises(IndexError):
        SyntheticLatents(4, 8, length=3)[3]


# ---------------------------------------------------------------------------------------- open_dataset

def test_open_dataset_synthetic() -> None:
    ds = open_dataset("synthetic", frames=16, latent_size=32, channels=4)
    assert ds[0].shape == (16, 4, 32, 32)


def test_open_dataset_missing_folder(tmp_path) -> None:
    with pytest.raises(XdimoError, match="neither 'synthetic' nor a folder"):
        open_dataset(str(tmp_path / "nope"), 16, 32)


def test_open_dataset_video_folder_points_to_the_cache_builder(tmp_path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(XdimoError, match="xdimo.train.latents"):
        open_dataset(str(tmp_path), 16, 32)


def test_open_dataset_cache_checks_latent_shape(tmp_path) -> None:
    import conftest_data

    root = conftest_data.write_fake_cache(tmp_path / "c", [50, 60], latent_size=8)
    assert open_dataset(str(root), 16, 8)[0].shape == (16, 4, 8, 8)
    with pytest.raises(XdimoError, match="expects 4x32x32"):
        open_dataset(str(root), 16, 32)


# ---------------------------------------------------------------------------------------------- loader

class Indices(Dataset):
    """Returns the key it was given, to see what the sampler hands out."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        index, rng = item_rng(key)
        return torch.tensor([index, int(rng.integers(1 << 30))])


def epoch_indices(loader) -> list[int]:
    return [int(i) for b in loader for i in b[:, 0]]


def test_ranks_get_disjoint_equal_shards_of_full_batches() -> None:
    ds, world = Indices(103), 4
    shards = [epoch_indices(make_loader(ds, 5, r, world, seed=0, num_workers=0)) for r in range(world)]
    assert {len(s) for s in shards} == {25}  # 103 // 4 = 25 per rank, 5 full batches of 5
    flat = list(itertools.chain(*shards))
    assert len(set(flat)) == len(flat)


def test_set_epoch_reshuffles_and_same_epoch_repeats() -> None:
    loader = make_loader(Indices(40), 4, 0, 1, seed=3, num_workers=0)
    set_epoch(loader, 0)
    e0 = epoch_indices(loader)
    set_epoch(loader, 1)
    e1 = epoch_indices(loader)
    set_epoch(loader, 0)
    assert e0 != e1 and sorted(e0) == sorted(e1) and epoch_indices(loader) == e0


def test_augmentation_seed_changes_with_epoch() -> None:
    loader = make_loader(Indices(8), 8, 0, 1, seed=3, num_workers=0)
    draws = []
    for epoch in (0, 1):
        set_epoch(loader, epoch)
        batch = next(iter(loader))
        draws.append(dict(zip(batch[:, 0].tolist(), batch[:, 1].tolist(), strict=True)))
    assert all(draws[0][i] != draws[1][i] for i in range(8))


@pytest.mark.parametrize("start", [0, 3, 7, 10, 23])
def test_batches_resume_continues_the_uninterrupted_stream(start: int) -> None:
    make = lambda: make_loader(Indices(30), 3, 1, 3, seed=11, num_workers=0)  # noqa: E731 - 3 batches/epoch
    full = [b.tolist() for b in itertools.islice(batches(make()), 26)]
    resumed = [b.tolist() for b in itertools.islice(batches(make(), start_step=start), 26 - start)]
    assert resumed == full[start:]


def test_worker_processes_give_the_same_batches_as_the_main_process() -> None:
    plain = make_loader(Indices(24), 4, 0, 1, seed=5, num_workers=0)
    workers = make_loader(Indices(24), 4, 0, 1, seed=5, num_workers=2)
    a = [b.tolist() for b in itertools.islice(batches(plain, 2), 10)]
    b = [b.tolist() for b in itertools.islice(batches(workers, 2), 10)]
    assert a == b


def test_loader_options() -> None:
    loader = make_loader(Indices(24), 4, 0, 1, seed=0, num_workers=1)
    assert loader.drop_last and loader.persistent_workers
    assert loader.pin_memory == torch.cuda.is_available()
    assert not make_loader(Indices(24), 4, 0, 1, seed=0, num_workers=0).persistent_workers


def test_too_few_items_for_one_batch_per_rank() -> None:
    with pytest.raises(XdimoError, match="fewer than one batch"):
        make_loader(Indices(10), 4, 0, 4, seed=0, num_workers=0)


def test_batches_stream_every_key_once_per_epoch_across_batch_boundaries() -> None:
    loader = make_loader(Indices(30), 3, 2, 3, seed=4, num_workers=0)  # 10 keys per rank, batches of 3
    keys = [int(i) for b in itertools.islice(batches(loader), 10) for i in b[:, 0]]  # 3 epochs of 10
    for epoch in range(3):
        set_epoch(loader, epoch)
        plain = epoch_indices(loader)  # the per-epoch pass drops the last key (9 = 3 full batches)
        block = keys[10 * epoch: 10 * epoch + 10]
        assert len(set(block)) == 10 and block[:9] == plain


def test_a_plain_pass_ends_after_batches_is_closed() -> None:
    loader = make_loader(Indices(12), 3, 0, 1, seed=0, num_workers=0)
    stream = batches(loader)
    next(stream)
    stream.close()
    assert len(epoch_indices(loader)) == 12
