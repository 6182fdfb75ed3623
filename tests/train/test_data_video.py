"""The FFS video loader on small real mp4/avi files written with PyAV and read back through decord."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xdimo.errors import XdimoError
from xdimo.train.data import VideoClips, list_videos, read_frames, resize_crop, to_unit_range

pytest.importorskip("decord", reason="decord is not installed (pip install 'xdimo-jobs[train]')")
pytest.importorskip("av", reason="PyAV writes the test videos (pip install av)")

import conftest_data as cd  # noqa: E402 - after the skips: it is only useful with av


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("videos")
    return {
        "root": root,
        "long": cd.write_video(root / "a_long.mp4", 60),
        "exact": cd.write_video(root / "b_exact.mp4", 48),
        "short": cd.write_video(root / "sub" / "c_short.avi", 20, codec="mpeg4"),
    }


def test_decoded_frames_carry_their_frame_number(videos) -> None:
    frames = read_frames(videos["long"], [0, 7, 59])
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == torch.uint8
    clip = resize_crop(frames, 32).numpy()
    assert cd.frame_numbers(clip).tolist() == [0, 7, 59] and not cd.is_flipped(clip).any()


def test_list_videos_recursive_sorted_and_only_videos(videos, tmp_path) -> None:
    (videos["root"] / "notes.txt").write_text("x")
    assert list_videos(videos["root"]) == [videos["long"], videos["exact"], videos["short"]]
    with pytest.raises(XdimoError, match="no .mp4 or .avi"):
        list_videos(tmp_path)


def test_clip_shape_range_and_dtype(videos) -> None:
    ds = VideoClips(videos["root"], frames=16, stride=3, size=32)
    assert len(ds) == 3
    for key in range(3):
        clip = ds[key]
        assert clip.shape == (16, 3, 32, 32) and clip.dtype == torch.float32
        assert clip.min() >= -1.0 and clip.max() <= 1.0
        assert clip.min() < -0.9 and clip.max() > 0.9  # black and white both present: truly [-1, 1]


def test_clip_frames_are_the_planned_window(videos) -> None:
    ds = VideoClips(videos["root"], frames=16, stride=3, size=32, flip=False)
    starts = set()
    for epoch in range(12):
        _, planned, _ = ds.plan((0, epoch, 0))
        numbers = cd.frame_numbers(ds[(0, epoch, 0)].numpy())
        assert numbers.tolist() == planned.tolist()
        assert numbers[-1] - numbers[0] == 47 and 0 <= numbers[0] <= 12
        starts.add(int(numbers[0]))
    assert len(starts) > 3  # the window moves between epochs


def test_video_exactly_one_window_long_uses_all_of_it(videos) -> None:
    ds = VideoClips(videos["root"], size=32, flip=False)
    numbers = cd.frame_numbers(ds[1].numpy())
    assert numbers.tolist() == np.linspace(0, 47, 16, dtype=int).tolist()


def test_short_video_is_sampled_evenly_over_what_exists(videos) -> None:
    ds = VideoClips(videos["root"], size=32, flip=False)
    numbers = cd.frame_numbers(ds[2].numpy())  # the 20-frame avi
    assert numbers.tolist() == np.linspace(0, 19, 16, dtype=int).tolist()


def test_flip_mirrors_the_whole_clip_about_half_the_time(videos) -> None:
    ds = VideoClips(videos["root"], size=32)
    flips = []
    for epoch in range(20):
        key = (0, epoch, 1)
        _, _, planned = ds.plan(key)
        seen = cd.is_flipped(ds[key].numpy())
        assert seen.all() == planned and seen.any() == planned  # per clip, never per frame
        flips.append(planned)
    assert 3 <= sum(flips) <= 17


def test_flip_off_never_flips(videos) -> None:
    ds = VideoClips(videos["root"], size=32, flip=False)
    assert not any(cd.is_flipped(ds[(0, e, 0)].numpy()).any() for e in range(10))


def test_same_key_same_clip(videos) -> None:
    ds = VideoClips(videos["root"], size=32)
    assert torch.equal(ds[(0, 4, 2)], ds[(0, 4, 2)])


def test_resize_short_side_then_centre_crop() -> None:
    # 40 x 80 (H x W): short side 40 -> 20, width 80 -> 40, the crop keeps columns 10..30 of the 40.
    img = torch.zeros(1, 40, 80, 3, dtype=torch.uint8)
    img[:, :, 16:64] = 255  # white over columns 8..32 once resized: a 2-column margin each side of the crop
    out = resize_crop(img, 20)
    assert out.shape == (1, 3, 20, 20)
    assert torch.allclose(out, torch.ones_like(out))  # the black sides are cropped away, evenly
    img[:, :, 16:64] = 0
    img[:, :, 30:50] = 255  # narrower than the crop: black must show at both edges of the crop
    out = resize_crop(img, 20)
    assert out[..., 0].max() < -0.99 and out[..., -1].max() < -0.99 and out[..., 10].min() > 0.99


def test_resize_keeps_the_exact_range_on_sharp_edges() -> None:
    img = torch.zeros(2, 33, 47, 3, dtype=torch.uint8)
    img[:, ::2] = 255
    out = resize_crop(img, 16)
    assert out.min() >= -1 and out.max() <= 1


def test_unreadable_video_is_a_one_line_error(tmp_path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(XdimoError, match="cannot read video"):
        VideoClips(tmp_path)[0]


def test_uint8_clips_are_the_same_pixels(videos) -> None:
    floats, ints = VideoClips(videos["root"], size=32), VideoClips(videos["root"], size=32, uint8=True)
    key = (0, 3, 0)
    raw = ints[key]
    assert raw.dtype == torch.uint8 and raw.shape == (16, 3, 32, 32)
    assert torch.equal(to_unit_range(raw), floats[key])
