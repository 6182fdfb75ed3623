"""What the loop reads off the device besides the losses: a wait for the queued kernels, so a clock read covers
them, and the peak memory a log row reports.

Separate because these are the figures whose meaning differs between a GPU and the CPU (a sync or none; the
allocator's peaks or the resident set), and collect's hardware table states that meaning next to the numbers.
"""

from __future__ import annotations

import resource

import torch


def wait_for(device: torch.device) -> None:
    """Let the queued kernels finish, so a clock read now covers the work issued before it (the step issues
    its kernels ahead of the GPU: without this an interval's last kernels would count in no interval)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MEM_PEAK_SCOPE = "since_start"  # run.json's word for mem_peak_gib: never reset, so never below an earlier row's


def memory_gib(device: torch.device) -> float:
    """Peak memory of this process since it started (never reset: a row's mem_peak_gib is the peak so far, warm-up
    and compilation included, not its interval's; so collect's max over the steady intervals is the run's
    peak, what a user needs to know whether it fits): PyTorch's allocated peak on a GPU (below nvidia-smi by
    the allocator's cache and the CUDA context: see reserved_gib), the resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import psutil
    # RSS now; ru_maxrss (KiB on Linux) keeps the peak between intervals.
    now = psutil.Process().memory_info().rss
    return max(now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30


def reserved_gib(device: torch.device) -> float | None:
    """The caching allocator's peak reservation on a GPU (closer to nvidia-smi's figure); None on the CPU."""
    return torch.cuda.max_memory_reserved(device) / 2**30 if device.type == "cuda" else None
