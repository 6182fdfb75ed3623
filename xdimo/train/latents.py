"""The latent cache: every video's frames encoded once with the Stable Diffusion VAE, then trained from.

Layout of a finished cache folder::

    index.json            written last; a folder without it is not a cache (see ``open_dataset``)
    latents/000000.npy    one per video: float16 (or float32) array (T, 2, C, h, w) over ALL T frames;
                          [:, 0] the posterior mean, [:, 1] its standard deviation, both already scaled
                          by the scaling factor (0.18215 for SD's VAE)

Why all frames, not fixed clips: training draws a fresh random F16S3 window per sample, exactly as the pixel
loader does, so a cached run sees the same distribution of clips as an online-VAE run.

Why mean and std: Latte's loop encodes with ``latent_dist.sample()``, a fresh posterior draw each step.
``LatentCache`` redraws it (mean + std * noise, the noise from the item's own generator), so nothing of the
original recipe is lost; ``sample=False`` gives the mean (the round-trip tests use it).

Why flip in latent space: the flip is per clip, so it is applied to the latents, by reversing W. The VAE is
convolutional, so encode(flip(x)) is close to flip(encode(x)) but not equal (its kernels are not symmetric);
caching a second, flipped encoding would double the cost for a difference far below the posterior noise that
``sample`` adds anyway. ``flip=False`` turns augmentation off.

Crash safety: the build writes into ``<out>.partial/``, each video file by temp + rename, and renames the
folder to ``<out>`` only after ``index.json`` is in it. A crash leaves no half cache that looks complete, and
a rerun with the same settings keeps the videos already encoded in ``<out>.partial/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from xdimo.atomic import replacing
from xdimo.errors import XdimoError
from xdimo.train.data import (
    SampleKey,
    clip_indices,
    item_rng,
    list_videos,
    open_video,
    resize_crop,
)

INDEX_NAME = "index.json"
CACHE_VERSION = 1
SCALING_FACTOR = 0.18215  # Stable Diffusion's VAE latent scale, as Latte and DiT use it
DTYPES = {"float16": np.float16, "float32": np.float32}
VAE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ------------------------------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class CachedVideo:
    file: str     # relative to the cache folder
    source: str   # relative to the video folder
    frames: int


@dataclass(frozen=True)
class CacheIndex:
    version: int
    source: str
    vae: str
    scaling_factor: float
    size: int
    latent_size: int
    channels: int
    dtype: str
    frames: int      # the clip shape the cache was built for (training may ask for another)
    stride: int
    videos: list[CachedVideo]
    skipped: list[dict[str, str]] = field(default_factory=list)  # --skip-bad: {"source", "reason"} per video


def read_index(root: Path) -> CacheIndex:
    path = root / INDEX_NAME
    try:
        raw = json.loads(path.read_text())
        raw["videos"] = [CachedVideo(**v) for v in raw["videos"]]
        index = CacheIndex(**raw)
    except FileNotFoundError as e:
        raise XdimoError(f"{root} is not a finished latent cache: no {INDEX_NAME}") from e
    except (ValueError, TypeError, KeyError) as e:
        raise XdimoError(f"unreadable latent cache index {path}: {e}") from e
    if index.version != CACHE_VERSION:
        raise XdimoError(f"latent cache {root} has version {index.version}; this code reads {CACHE_VERSION}")
    return index


class LatentCache(Dataset):
    """F-frame latent clips (F, C, h, w) float32 drawn from a cache, one item per video.

    ``stride`` None takes the stride the cache was built for (index.json). Opening checks every video's file
    (its header only, through a memory map): a missing, truncated or misshapen file is named at once, not
    in a loader worker hours into a run.
    """

    def __init__(self, root: str | Path, frames: int = 16, stride: int | None = None, flip: bool = True,
                 sample: bool = True) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        stride = self.index.stride if stride is None else stride
        self.frames, self.stride, self.flip, self.sample = frames, stride, flip, sample
        self.channels, self.latent_size = self.index.channels, self.index.latent_size
        if os.environ.get("LOCAL_RANK", "0") == "0":  # once per node (torchrun's LOCAL_RANK), not once per rank
            for video in self.index.videos:
                check_file(self.root, video, self.channels, self.latent_size)

    def __len__(self) -> int:
        return len(self.index.videos)

    def plan(self, key: int | SampleKey) -> tuple[CachedVideo, np.ndarray, bool, np.random.Generator]:
        """Which video, which frames, flipped or not, and the generator left for the posterior draw."""
        index, rng = item_rng(key)
        video = self.index.videos[index]
        indices = clip_indices(video.frames, self.frames, self.stride, rng)
        flipped = self.flip and bool(rng.random() < 0.5)
        return video, indices, flipped, rng

    def __getitem__(self, key: int | SampleKey) -> torch.Tensor:
        video, indices, flipped, rng = self.plan(key)
        # mmap: only the rows of the chosen frames are read from disk.
        rows = np.asarray(np.load(self.root / video.file, mmap_mode="r")[indices], dtype=np.float32)
        clip = rows[:, 0]
        if self.sample:
            clip = clip + rows[:, 1] * rng.standard_normal(clip.shape, dtype=np.float32)
        if flipped:
            clip = clip[..., ::-1]
        return torch.from_numpy(np.ascontiguousarray(clip))


def check_file(root: Path, video: CachedVideo, channels: int, latent_size: int) -> None:
    """Refuse, naming the file, a cache file that is missing, unreadable or not the shape index.json says."""
    path = root / video.file
    want = (video.frames, 2, channels, latent_size, latent_size)
    try:
        shape = tuple(np.load(path, mmap_mode="r").shape)
    except FileNotFoundError:
        raise XdimoError(f"damaged latent cache {root}: {video.file} (of {video.source}) is missing") from None
    except (OSError, ValueError) as e:  # a truncated file: "mmap length is greater than file size"
        raise XdimoError(f"damaged latent cache {root}: {video.file} (of {video.source}) is unreadable: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if shape != want:
        raise XdimoError(f"damaged latent cache {root}: {video.file} (of {video.source}) has shape {shape}; "
                         f"index.json says {want}")


# ------------------------------------------------------------------------------------------------- building

@dataclass(frozen=True)
class Chunk:
    video: int
    start: int
    stop: int
    last: bool


class FrameChunks(IterableDataset):
    """Resized, cropped frames, ``batch`` at a time; each worker decodes whole videos front to back.

    Videos are dealt to workers (video v to worker v mod n), and each worker reads its video with one
    decord reader from start to end: no seeking, so every frame is decoded once. Chunks of different
    videos arrive interleaved; ``_encode_all`` keeps one buffer per video.
    """

    def __init__(self, videos: list[Path], chunks: list[Chunk], size: int) -> None:
        self.videos, self.chunks, self.size = videos, chunks, size

    def __iter__(self) -> Iterator[tuple[Chunk, torch.Tensor | str]]:
        """(chunk, pixels), or (chunk, why) for a video that cannot be decoded: its other chunks are dropped, and
        the main process decides (a worker's exception would reach it as a traceback naming no file)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        reader, current, bad = None, -1, -1
        for c in self.chunks:
            if c.video % workers != worker or c.video == bad:
                continue
            path = self.videos[c.video]
            try:
                if c.video != current:
                    reader, current = open_video(path), c.video
                frames = torch.from_numpy(reader.get_batch(list(range(c.start, c.stop))).asnumpy())
            except Exception as e:  # decord's DECORDError, or XdimoError from open_video
                bad = c.video
                why = first_line(e)
                yield c, why if isinstance(e, XdimoError) else f"cannot decode video {path} " \
                                                                   f"(frames {c.start}-{c.stop - 1}): {why}"
                continue
            yield c, resize_crop(frames, self.size)


def first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def plan_chunks(lengths: list[int], batch: int, skip: set[int]) -> list[Chunk]:
    """Frame ranges of at most ``batch`` frames covering every video not in ``skip``."""
    chunks = []
    for v, n in enumerate(lengths):
        if v in skip:
            continue
        starts = range(0, n, batch)
        chunks += [Chunk(v, s, min(s + batch, n), s + batch >= n) for s in starts]
    return chunks


def vae_folder(vae_path: str | Path) -> Path:
    """``vae_path`` when it holds a diffusers VAE (config.json, itself or under ``vae/``); else one line."""
    path = Path(vae_path)
    if not (path / "config.json").is_file() and not (path / "vae" / "config.json").is_file():
        raise XdimoError(f"no VAE at {path}: expected a diffusers folder with config.json "
                         "(a local copy of stabilityai/sd-vae-ft-ema); weights cannot be downloaded here")
    return path


# The image side must be a multiple of the VAE's 8 times the smallest patch (2) for any model to train on it.
SIZE_MULTIPLE = 16


def check_settings(frames: int, stride: int, size: int, batch: int, device: str, workers: int, dtype: str,
                   vae_dtype: str, scale: float) -> None:
    """Refuse, in one line naming the flag, a setting no build (or no training on its cache) can use: checked
    before any video is read or anything is written."""
    for name, value, low in (("frames", frames, 1), ("stride", stride, 1), ("batch", batch, 1),
                             ("workers", workers, 0), ("size", size, SIZE_MULTIPLE)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise XdimoError(f"--{name} must be an integer >= {low}, got {value!r}")
    if size % SIZE_MULTIPLE:
        raise XdimoError(f"--size must be a multiple of {SIZE_MULTIPLE} (the VAE's 8 x the smallest patch, 2) "
                         f"for a model to train on the cache, got {size}")
    if not (math.isfinite(scale) and scale > 0):
        raise XdimoError(f"--scale must be a finite number > 0, got {scale}")
    if dtype not in DTYPES:
        raise XdimoError(f"--dtype must be one of {', '.join(sorted(DTYPES))}, got {dtype!r}")
    if vae_dtype not in VAE_DTYPES:
        raise XdimoError(f"--vae-dtype must be one of {', '.join(sorted(VAE_DTYPES))}, got {vae_dtype!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise XdimoError(f"--device {device!r} is not a device: {first_line(e)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise XdimoError(f"--device {device}: this torch sees no CUDA GPU (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise XdimoError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) visible")
    elif dev.type != "cpu":
        raise XdimoError(f"--device must be cpu or cuda[:N], got {device!r}")


def load_vae(vae_path: str | Path, device: str, dtype: torch.dtype) -> Any:
    """``AutoencoderKL`` from a local folder: the VAE itself, or a Stable Diffusion folder with ``vae/``."""
    try:
        from diffusers import AutoencoderKL
    except ImportError as e:
        raise XdimoError("diffusers is not installed: pip install diffusers") from e
    path = vae_folder(vae_path)
    sub = {} if (path / "config.json").is_file() else {"subfolder": "vae"}
    try:
        vae = AutoencoderKL.from_pretrained(str(path), torch_dtype=dtype, **sub)
    except Exception as e:  # diffusers raises OSError/ValueError/EnvironmentError variously
        raise XdimoError(f"cannot load the VAE from {path}: {str(e).splitlines()[0]}") from e
    return vae.to(device=device).eval().requires_grad_(False)


@torch.no_grad()
def encode(vae: Any, pixels: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) in [-1, 1] -> scaled posterior mean and std, (N, C, h, w) each, float32 on the CPU."""
    param = next(vae.parameters())
    dist = vae.encode(pixels.to(device=param.device, dtype=param.dtype)).latent_dist
    return (dist.mean.float() * scale).cpu(), (dist.std.float() * scale).cpu()


def save_atomic(path: Path, array: np.ndarray) -> None:
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_json_atomic(path: Path, data: dict) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def prepare_partial(partial: Path, settings: dict) -> set[int]:
    """Open ``<out>.partial``; keep what a previous build with the same settings finished, else start over."""
    marker = partial / "build.json"
    if partial.exists():
        try:
            same = json.loads(marker.read_text()) == settings
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(partial)
    (partial / "latents").mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, settings)
    return {int(p.stem) for p in (partial / "latents").glob("*.npy")}


def video_file(v: int) -> str:
    return f"latents/{v:06d}.npy"


def build_cache(video_root: str | Path, out_dir: str | Path, vae_path: str | Path, frames: int = 16,
                stride: int = 3, size: int = 256, batch: int = 32, device: str = "cpu",
                workers: int = 2, dtype: str = "float16", vae_dtype: str = "fp32",
                scale: float = SCALING_FACTOR, overwrite: bool = False, skip_bad: bool = False,
                log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Path:
    """Encode every video under ``video_root`` into a latent cache at ``out_dir``; returns ``out_dir``.

    A video that cannot be opened or decoded stops the build with one line naming it, unless ``skip_bad``:
    then it is left out, logged, and listed under ``skipped`` in index.json. The videos encoded before the
    stop are kept, so a rerun with ``skip_bad`` continues from there."""
    root, out = Path(video_root).resolve(), Path(out_dir).resolve()
    check_settings(frames=frames, stride=stride, size=size, batch=batch, device=device, workers=workers,
                   dtype=dtype, vae_dtype=vae_dtype, scale=scale)
    if (out / INDEX_NAME).exists() and not overwrite:
        raise XdimoError(f"latent cache {out} already exists (pass --overwrite to rebuild it)")
    vae_folder(vae_path)  # a missing VAE is named before anything is read or written
    videos = list_videos(root)
    sources = [str(p.relative_to(root)) for p in videos]
    settings = {"version": CACHE_VERSION, "source": str(root), "vae": str(Path(vae_path).resolve()),
                "scale": scale, "size": size, "dtype": dtype, "vae_dtype": vae_dtype, "videos": sources}
    partial = out.with_name(out.name + ".partial")
    vae = load_vae(vae_path, device, VAE_DTYPES[vae_dtype])  # and one that does not load, before <out>.partial
    done = prepare_partial(partial, settings)
    bad: dict[int, str] = {}

    def refuse(v: int, why: str) -> None:
        if not skip_bad:
            raise XdimoError(f"{why} (pass --skip-bad to leave unreadable videos out of the cache)")
        bad[v] = why
        log(f"skipped: {why}")

    lengths = [_length(p, v, refuse) for v, p in enumerate(videos)]
    if done:
        log(f"resuming: {len(done)} of {len(videos)} videos already encoded in {partial}")
    chunks = FrameChunks(videos, plan_chunks(lengths, batch, done | set(bad)), size)
    shape = _encode_all(vae, chunks, partial, scale, DTYPES[dtype], workers, log, refuse)
    kept = [v for v in range(len(videos)) if v not in bad]
    if not kept:
        raise XdimoError(f"none of the {len(videos)} videos under {root} could be read")
    channels, latent_size = shape or _shape_of(partial / video_file(kept[0]))
    index = CacheIndex(CACHE_VERSION, str(root), str(vae_path), scale, size, latent_size, channels, dtype,
                       frames, stride, [CachedVideo(video_file(v), sources[v], lengths[v]) for v in kept],
                       [{"source": sources[v], "reason": why} for v, why in sorted(bad.items())])
    for v in bad:
        (partial / video_file(v)).unlink(missing_ok=True)
    if bad:
        log(f"note: {len(bad)} of {len(videos)} videos could not be read and are left out (index.json: skipped)")
    short = sum(lengths[v] < frames * stride for v in kept)
    if short:
        log(f"note: {short} videos are shorter than the {frames * stride}-frame window; their clips sample "
            "the whole video evenly")
    write_json_atomic(partial / INDEX_NAME, asdict(index))
    _swap_in(partial, out)
    return out


def _length(path: Path, v: int, refuse: Callable[[int, str], None]) -> int:
    """A video's frame count, or 0 after ``refuse`` (which raises unless bad videos are skipped)."""
    try:
        n = len(open_video(path))
    except XdimoError as e:
        refuse(v, first_line(e))
        return 0
    if n < 1:
        refuse(v, f"video {path} has no frames")
    return max(n, 0)


def _shape_of(path: Path) -> tuple[int, int]:
    array = np.load(path, mmap_mode="r")
    return int(array.shape[2]), int(array.shape[3])


def _encode_all(vae: Any, chunks: FrameChunks, partial: Path, scale: float, dtype: type, workers: int,
                log: Callable[[str], None], refuse: Callable[[int, str], None] = lambda v, why: None
                ) -> tuple[int, int] | None:
    """Encode the chunks as they come, writing each video's file when its last chunk is done; a video that
    cannot be decoded goes to ``refuse`` (which raises unless bad videos are skipped)."""
    loader = DataLoader(chunks, batch_size=None, num_workers=workers, pin_memory=torch.cuda.is_available(),
                        prefetch_factor=4 if workers else None)
    parts: dict[int, list[np.ndarray]] = {}
    shape, encoded, t0 = None, 0, time.perf_counter()
    total = sum(c.stop - c.start for c in chunks.chunks)
    for chunk, pixels in loader:
        if isinstance(pixels, str):
            parts.pop(chunk.video, None)
            refuse(chunk.video, pixels)
            continue
        mean, std = encode(vae, pixels, scale)
        parts.setdefault(chunk.video, []).append(torch.stack([mean, std], dim=1).numpy().astype(dtype))
        shape, encoded = (int(mean.shape[1]), int(mean.shape[2])), encoded + len(pixels)
        if chunk.last:
            save_atomic(partial / video_file(chunk.video), np.concatenate(parts.pop(chunk.video)))
            rate = encoded / max(time.perf_counter() - t0, 1e-9)
            log(f"[{encoded}/{total} frames] {chunks.videos[chunk.video].name}: {rate:.1f} frames/s")
    return shape


def _swap_in(partial: Path, out: Path) -> None:
    """Rename the finished ``partial`` folder to ``out``, replacing an old cache only at the last moment."""
    old = out.with_name(out.name + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(partial, out)
    if old.exists():
        shutil.rmtree(old)


# --------------------------------------------------------------------------------------------- entry point

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]  # one line, exit 2, as python -m xdimo.train
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(prog="python -m xdimo.train.latents",
                                description="Encode a folder of videos into a latent cache for training.")
    p.add_argument("--videos", required=True, help="folder of .mp4/.avi files (searched recursively)")
    p.add_argument("--out", required=True, help="cache folder to create")
    p.add_argument("--vae", required=True, help="local diffusers AutoencoderKL folder (e.g. sd-vae-ft-ema)")
    p.add_argument("--size", type=int, default=256, help="frame size after short-side resize + centre crop")
    p.add_argument("--frames", type=int, default=16, help="clip length recorded for training (default 16)")
    p.add_argument("--stride", type=int, default=3, help="clip stride recorded for training (default 3)")
    p.add_argument("--batch", type=int, default=32, help="frames per VAE forward")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=2, help="decode workers")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float16", help="storage dtype")
    p.add_argument("--vae-dtype", choices=sorted(VAE_DTYPES), default="fp32")
    p.add_argument("--scale", type=float, default=SCALING_FACTOR)
    p.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out videos that cannot be opened or decoded (logged, and listed under 'skipped' in "
                        "index.json); by default the first one stops the build, naming it, and a rerun with "
                        "--skip-bad keeps the videos encoded so far")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        out = build_cache(a.videos, a.out, a.vae, frames=a.frames, stride=a.stride, size=a.size,
                          batch=a.batch, device=a.device, workers=a.workers, dtype=a.dtype,
                          vae_dtype=a.vae_dtype, scale=a.scale, overwrite=a.overwrite, skip_bad=a.skip_bad)
    except XdimoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
