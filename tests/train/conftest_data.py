"""Shared fixtures for the data and latent-cache tests: small real videos and hand-written caches.

Imported explicitly (``import conftest_data``), not a pytest conftest, so only these tests pay for it.

The videos carry their own ground truth: the top half of frame i is a flat grey of level ``LEVEL_STEP * i``
(flat areas survive H.264 almost exactly), so a decoded frame tells which frame it was; the bottom half is
white on the left and black on the right, so a decoded frame tells whether it was flipped; a small square
moves across the middle so the codec has real motion to encode.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LEVEL_STEP = 4  # grey-level step per frame: 60 frames fit in 0..240


def frame_pattern(i: int, width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[: height // 2] = (LEVEL_STEP * i) % 256  # frame numbers read back only below 64 frames
    img[height // 2:, : width // 2] = 255
    x = (3 * i) % max(1, width - 8)
    img[height // 2 - 4: height // 2 + 4, x: x + 8] = (200, 30, 90)  # the moving square
    return img


def write_video(path: Path, n_frames: int, width: int = 64, height: int = 48, codec: str = "libx264") -> Path:
    """A real video file written with PyAV (mp4/H.264 by default; pass codec='mpeg4' for .avi)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "1", "preset": "ultrafast"}  # near-lossless: grey levels stay exact
        else:
            stream.bit_rate = 4_000_000
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def frame_numbers(clip: np.ndarray) -> np.ndarray:
    """Frame numbers read back from a (F, 3, H, W) clip in [-1, 1] (top half's grey level)."""
    h = clip.shape[-2]
    top = (clip[:, :, : h // 2 - 6] + 1) * 127.5  # stay clear of the moving square
    return np.rint(top.mean(axis=(1, 2, 3)) / LEVEL_STEP).astype(int)


def is_flipped(clip: np.ndarray) -> np.ndarray:
    """Per frame: True where the bottom half is white on the right (the video was mirrored)."""
    h, w = clip.shape[-2:]
    bottom = clip[:, :, h // 2 + 6:]
    return bottom[..., w // 2:].mean(axis=(1, 2, 3)) > bottom[..., : w // 2].mean(axis=(1, 2, 3))


def write_fake_cache(root: Path, lengths: list[int], channels: int = 4, latent_size: int = 8,
                     std: float = 0.0, dtype: str = "float32") -> Path:
    """A finished cache written by hand (no VAE): latent [t, 0] holds t everywhere plus a W ramp."""
    (root / "latents").mkdir(parents=True)
    videos = []
    ramp = np.arange(latent_size, dtype=np.float32) / latent_size
    for v, n in enumerate(lengths):
        shape = (n, channels, latent_size, latent_size)
        mean = np.arange(n, dtype=np.float32)[:, None, None, None] + ramp + np.zeros(shape, np.float32)
        array = np.stack([mean, np.full_like(mean, std)], axis=1).astype(dtype)
        np.save(root / "latents" / f"{v:06d}.npy", array)
        videos.append({"file": f"latents/{v:06d}.npy", "source": f"v{v}.mp4", "frames": n})
    index = {"version": 1, "source": "/videos", "vae": "/vae", "scaling_factor": 0.18215, "size": 64,
             "latent_size": latent_size, "channels": channels, "dtype": dtype, "frames": 16, "stride": 3,
             "videos": videos}
    (root / "index.json").write_text(json.dumps(index))
    return root
