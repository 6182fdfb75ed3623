"""GPUs on this machine, through NVML (pynvml); an empty list when there are none."""

from __future__ import annotations

from functools import cache


@cache
def local_gpus() -> tuple[str, ...]:
    """Names of this machine's GPUs in index order; () without a driver or GPUs."""
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no library: a CPU machine
        return ()
    try:
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else name)
        return tuple(names)
    finally:
        pynvml.nvmlShutdown()
