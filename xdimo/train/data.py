"""Training data for the reference workload: synthetic latents, the FFS video loader, and the loader factory.

Three datasets, all returning float32 clips shaped (F, C, H, W):

* ``SyntheticLatents``: deterministic latent clips built on demand (704 items, like FFS), for smoke runs and
  benchmarks that must not depend on data on disk.
* ``VideoClips``: the official Latte FFS pipeline over a folder of videos, read with decord: a random
  ``frames * stride`` window, ``frames`` evenly spaced frames from it, random horizontal flip, short-side
  resize and centre crop, values in [-1, 1]. Pixels, (F, 3, size, size): the online-VAE path.
* ``LatentCache`` (in ``latents.py``): the same clips drawn from VAE latents encoded once. The fast path.

Randomness (window start, flip, posterior sample) is never drawn from a global generator. ``make_loader``'s
sampler hands each dataset a key ``(index, epoch, seed)`` and the item derives its own generator from it, so a
clip depends only on (seed, epoch, index): the same with 0 or 8 workers, and the same after ``--resume``
(which is what makes a resumed run bit-for-bit equal to an uninterrupted one). A plain integer index is
deterministic too (epoch 0, seed 0), which keeps ``dataset[i]`` usable in tests and notebooks.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from xdimo.errors import XdimoError

FFS_TRAIN_VIDEOS = 704
VIDEO_SUFFIXES = (".mp4", ".avi")

SampleKey = tuple[int, int, int]  # (index, epoch, seed)

# What schedulers and terminals send to ask a run to stop (stop.StopRequests handles them in the main process).
# Slurm, LSF, a local kill of the process group and Ctrl-C reach every process of the job, loader workers
# included: a worker must ignore them, or the main process dies of "DataLoader worker exited unexpectedly"
# before it can write its checkpoint.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


# ------------------------------------------------------------------------------------------------- sampling

def item_rng(key: int | SampleKey) -> tuple[int, np.random.Generator]:
    """The dataset index and the generator for one draw; a bare int means epoch 0, seed 0."""
    index, epoch, seed = (int(key), 0, 0) if isinstance(key, int | np.integer) else key
    return int(index), np.random.default_rng([seed, epoch, index])


def clip_indices(n_frames: int, frames: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """Frame numbers of one clip: a random window of ``frames * stride``, ``frames`` evenly spaced in it.

    As the official Latte loader (``np.linspace(start, start + window - 1, frames, dtype=int)``), so for F16S3
    the gaps are 3 or 4 frames, spanning the whole 48-frame window. A video shorter than the window gives its
    whole length, sampled evenly the same way: frames repeat when it is shorter than ``frames`` itself. That
    keeps every clip the same shape instead of dropping short videos (FFS has none under 48 frames, but a
    user's folder might).
    """
    if n_frames < 1:
        raise XdimoError("a video with no frames cannot give a clip")
    window = frames * stride
    if n_frames <= window:
        return np.linspace(0, n_frames - 1, frames, dtype=int)
    start = int(rng.integers(0, n_frames - window + 1))
    return np.linspace(start, start + window - 1, frames, dtype=int)


# ------------------------------------------------------------------------------------------------- synthetic

class SyntheticLatents(Dataset):
    """Deterministic latent clips, built per index on demand (nothing held in memory).

    Each item is a fixed random field plus a slow drift over frames, scaled to unit variance like real scaled
    SD latents: frames are correlated, so temporal attention has something to learn, and the cost is a few
    ``randn`` calls of the clip's size.
    """

    def __init__(self, frames: int, latent_size: int, channels: int = 4, length: int = FFS_TRAIN_VIDEOS,
                 seed: int = 0) -> None:
        self.frames, self.size, self.channels = frames, latent_size, channels
        self.length, self.seed = length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | SampleKey) -> torch.Tensor:
        index, _ = item_rng(key)  # content depends on the index only: the "video" is fixed, like real data
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        shape = (self.channels, self.size, self.size)
        base = torch.randn(shape, generator=g)
        drift = torch.randn((self.frames, *shape), generator=g).cumsum(0) * 0.1
        clip = base.unsqueeze(0) + drift
        return (clip / clip.std()).float()


# ------------------------------------------------------------------------------------------------- videos

def list_videos(root: str | Path) -> list[Path]:
    """Every *.mp4 / *.avi under ``root`` (subfolders included), in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise XdimoError(f"video folder not found: {root}")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not found:
        raise XdimoError(f"no .mp4 or .avi files under {root}")
    return found


def resize_crop_u8(frames_u8: torch.Tensor, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) uint8: short side to ``size``, centre crop.

    Bilinear with antialias (a box-like filter when shrinking 1080p FFS frames 4x; without it the result
    aliases), run on uint8 in channels-last layout, which is how decord hands frames over: torch has a
    vectorised kernel for exactly that case, 20-30x faster than the float path (measured 0.02 s against
    0.66 s for 16 1080p frames on one core), and the rounding to whole grey levels on the way is what PIL
    and torchvision do too.
    """
    x = frames_u8.permute(0, 3, 1, 2)  # a (T, 3, H, W) view whose memory is channels-last
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = nnf.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top:top + size, left:left + size].contiguous()


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1] (Latte's Normalize(mean=0.5, std=0.5) after ToTensor)."""
    return x.float() / 127.5 - 1.0


def resize_crop(frames_u8: torch.Tensor, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) float32 in [-1, 1]."""
    return to_unit_range(resize_crop_u8(frames_u8, size))


def open_video(path: Path) -> Any:
    """A decord reader on the CPU, one decode thread (parallelism comes from DataLoader workers)."""
    try:
        import decord
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise XdimoError("decord is not installed: pip install 'xdimo-jobs[train]'") from e
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as e:  # decord raises its own DECORDError for unreadable files
        raise XdimoError(f"cannot read video {path}: {e}") from e


def read_frames(path: Path, indices: np.ndarray | list[int]) -> torch.Tensor:
    """Decoded frames ``indices`` of ``path`` as (T, H, W, 3) uint8."""
    reader = open_video(path)
    try:
        batch = reader.get_batch(list(map(int, indices)))
    except Exception as e:  # decord's DECORDError: a damaged file, its message never names it
        text = str(e).strip()
        raise XdimoError(f"cannot decode video {path}: {text.splitlines()[0][:300] if text else type(e).__name__}"
                         ) from None
    return torch.from_numpy(batch.asnumpy())


def video_length(path: Path) -> int:
    return len(open_video(path))


class VideoClips(Dataset):
    """The official Latte FFS loader over a folder of videos: (F, 3, size, size) float32 in [-1, 1].

    ``uint8=True`` returns the same pixels as uint8 in [0, 255]; the caller normalises on the GPU with
    ``to_unit_range``: a quarter of the bytes through worker queues and pinned memory (a float clip is
    12.6 MB at 256x256), for 8-GPU nodes where host memory bandwidth is shared.
    """

    def __init__(self, root: str | Path, frames: int = 16, stride: int = 3, size: int = 256,
                 flip: bool = True, uint8: bool = False) -> None:
        self.videos = list_videos(root)
        self.frames, self.stride, self.size, self.flip, self.uint8 = frames, stride, size, flip, uint8
        self._lengths: dict[int, int] = {}  # per process: a video's length is read once, not per draw

    def __len__(self) -> int:
        return len(self.videos)

    def plan(self, key: int | SampleKey) -> tuple[Path, np.ndarray, bool]:
        """Which video, which frames, flipped or not: everything random about one draw."""
        index, rng = item_rng(key)
        path = self.videos[index]
        if index not in self._lengths:
            self._lengths[index] = video_length(path)
        indices = clip_indices(self._lengths[index], self.frames, self.stride, rng)
        flipped = self.flip and bool(rng.random() < 0.5)
        return path, indices, flipped

    def __getitem__(self, key: int | SampleKey) -> torch.Tensor:
        path, indices, flipped = self.plan(key)
        clip = resize_crop_u8(read_frames(path, indices), self.size)
        clip = clip.flip(-1) if flipped else clip
        return clip if self.uint8 else to_unit_range(clip)


# ------------------------------------------------------------------------------------------------- factory

def open_dataset(source: str, frames: int, latent_size: int, channels: int = 4,
                 stride: int | None = None) -> Dataset:
    """Latent clips (F, C, latent_size, latent_size) float32 for training.

    ``source`` is ``synthetic`` or a latent cache folder written by ``python -m xdimo.train.latents``. A
    folder of raw videos is refused with a pointer to the cache builder: the reference workload trains on
    latents. A cache's clips use the stride it was built with (``--stride``, in its index.json) unless
    ``stride`` is given; ``frames`` more than its longest video holds is refused (every clip would repeat
    frames).
    """
    if source == "synthetic":
        return SyntheticLatents(frames, latent_size, channels)
    path = Path(source)
    if not path.is_dir():
        raise XdimoError(f"data source is neither 'synthetic' nor a folder: {source}")
    from xdimo.train.latents import INDEX_NAME, LatentCache  # late: latents.py imports this module

    if not (path / INDEX_NAME).is_file():
        hint = " (it holds videos: build the cache with python -m xdimo.train.latents)" \
            if any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.rglob("*")) else ""
        raise XdimoError(f"{path} is not a finished latent cache: no {INDEX_NAME}{hint}")
    cache = LatentCache(path, frames=frames, stride=stride)
    if (cache.channels, cache.latent_size) != (channels, latent_size):
        have = f"{cache.channels}x{cache.latent_size}x{cache.latent_size}"
        raise XdimoError(f"latent cache {path} holds {have} latents; "
                         f"the model expects {channels}x{latent_size}x{latent_size}")
    if not cache.index.videos:
        raise XdimoError(f"latent cache {path} holds no videos")
    longest = max(v.frames for v in cache.index.videos)
    if frames > longest:
        raise XdimoError(f"--frames {frames} is more than the longest video of latent cache {path} holds "
                         f"({longest} frames; it was built for {cache.index.frames}-frame clips)")
    return cache


class KeyedSampler(Sampler[SampleKey]):
    """A DistributedSampler whose indices come with the epoch and seed, for per-item random draws.

    ``endless`` runs on through the following epochs instead of stopping (``batches`` uses it): a
    DataLoader drains its workers at every epoch end, which with few items per rank (FFS over 8 GPUs is 88
    videos each, 17 batches of 5) idles most workers. Measured on an H100 node (16 cores, 16 480p videos,
    batch 5): per-epoch iteration stalled at about 22 clips/s with 4, 8 or 14 workers; the endless stream
    gives 30, 55 and 142 clips/s.
    """

    def __init__(self, dataset: Dataset, rank: int, world_size: int, seed: int) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                        drop_last=True)
        self.seed = seed
        self.skip = 0  # keys to pass over at the start of the next pass only (resume mid-epoch)
        self.endless = False

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip

    @property
    def epoch(self) -> int:
        return self.inner.epoch

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[SampleKey]:
        # Iterated in the main process even with persistent workers, so epoch and skip are always current.
        epoch, skip, self.skip = self.inner.epoch, self.skip, 0
        while True:
            self.inner.set_epoch(epoch)
            yield from ((int(i), epoch, self.seed) for n, i in enumerate(self.inner) if n >= skip)
            if not self.endless:
                return
            epoch, skip = epoch + 1, 0


def make_loader(dataset: Dataset, batch_size: int, rank: int, world_size: int, seed: int,
                num_workers: int) -> DataLoader:
    """A DataLoader over this rank's shard: shuffled per epoch, full batches only.

    Iterate it with ``batches(loader, start_step)`` (endless, resumable), or per epoch after
    ``set_epoch(loader, epoch)``: without that every epoch repeats the same order. Every rank gets the same
    number of items per epoch.
    """
    sampler = KeyedSampler(dataset, rank, world_size, seed)
    if len(sampler) < batch_size:
        raise XdimoError(f"{len(dataset)} items over {world_size} ranks leave {len(sampler)} per rank, "
                         f"fewer than one batch of {batch_size}")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
                      drop_last=True, prefetch_factor=4 if num_workers > 0 else None,
                      worker_init_fn=ignore_stop_signals if num_workers > 0 else None)


def ignore_stop_signals(worker_id: int) -> None:
    """A loader worker's ``worker_init_fn``: the stop signals are the main process's business (see STOP_SIGNALS).

    A worker is left by its parent's ``DataLoader`` shutdown, or by its watchdog when the parent is gone.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by start_workers while it forked


def start_workers(loader: DataLoader) -> Iterator[torch.Tensor]:
    """``iter(loader)``, which forks the workers, with the stop signals blocked meanwhile: a signal that comes
    between a worker's fork and its ``ignore_stop_signals`` stays pending in it and is then discarded (in the
    main process it is delivered, and handled, as soon as the workers are up)."""
    if loader.num_workers == 0:
        return iter(loader)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def set_epoch(loader: DataLoader, epoch: int, skip_batches: int = 0) -> None:
    """Reshuffle a ``make_loader`` loader for ``epoch``; its next pass starts after ``skip_batches``."""
    loader.sampler.set_epoch(epoch, skip_batches * loader.batch_size)


def batches(loader: DataLoader, start_step: int = 0) -> Iterator[torch.Tensor]:
    """Batches forever from a ``make_loader`` loader, starting at batch ``start_step``.

    One continuous stream of this rank's keys, epoch after epoch (reshuffled each epoch), cut into batches:
    workers never drain at epoch ends, and no item is dropped (a batch may straddle two epochs). For
    ``--resume``: with ``start_step`` = the number of batches already consumed, the stream continues with
    exactly the batches an uninterrupted run would have seen next; skipped keys are never loaded.
    """
    sampler: KeyedSampler = loader.sampler
    epoch, skip = divmod(start_step * loader.batch_size, len(sampler))
    sampler.set_epoch(epoch, skip)
    sampler.endless = True
    try:
        yield from start_workers(loader)
    finally:
        sampler.endless = False
