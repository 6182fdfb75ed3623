"""How the tables name a run's hardware (its pool, else its GPU; the GPU it reported where that is not its pool's),
and whether anything says which GPU it ran on."""

from __future__ import annotations

import re
from functools import lru_cache

from xdimo import hardware
from xdimo.collect.derive.records import RunRecord

UNKNOWN_HARDWARE = "?"  # the label of a run whose pool and GPU are both unknown (a legacy log without a summary)
# The label of a run that trained on the CPU in a pool of GPUs (torch saw no CUDA in the job: a CPU-only torch, a
# driver mismatch): its figures are the node's CPU, never the pool's GPU row, baseline or speedup.
CPU_LABEL = "CPU"

# A GPU model (xdimo.hardware's key) as the tables name it where a run reported another GPU than its pool's: the
# label a pool of that GPU gets (gpu_h100 -> H100, gpu_6000ada -> 6000ada); other models by their table name.
GPU_LABELS = {"h200-sxm": "H200", "h200-nvl": "H200 NVL", "h100-sxm": "H100", "h100-nvl": "H100 NVL",
              "h100-pcie": "H100 PCIe", "rtx-pro-6000": "pro6000", "rtx-6000-ada": "6000ada", "a100": "A100",
              "rtx-4090": "4090", "v100-sxm": "V100", "v100-sxm-16gb": "V100", "v100-pcie": "V100 PCIe",
              "v100s-pcie": "V100S"}


def gpu_model(name: str) -> str | None:
    """The GPU model (xdimo.hardware's key, e.g. "h100-sxm") a device, pool or cluster name says; None if none."""
    spec = hardware.match_gpu(name) if name else None
    return spec.key if spec else None


def family(model: str) -> str:
    """A GPU model without its form factor or memory size (h200-nvl -> h200, v100-sxm-16gb -> v100): a pool named
    gpu_h200 holds H200 NVL cards as well."""
    return re.sub(r"-(sxm|nvl|pcie)(-\d+gb)?$", "", model)


def reported_elsewhere(pool: str, gpu_name: str) -> str | None:
    """The model of the GPU a run reported where its pool's name says another GPU (an H100 in gpu_h200); None
    where they agree (an H200 NVL in gpu_h200 is that pool's GPU), or either is not a GPU this table knows."""
    reported, pooled = gpu_model(gpu_name), gpu_model(pool)
    return reported if reported and pooled and family(reported) != family(pooled) else None


def is_cpu_name(name: str) -> bool:
    """Whether a device or pool GPU name is the CPU (run.json's ``gpu_name`` "cpu", a pool of CPU slots)."""
    return name.strip().lower() == "cpu"


def cpu_in_gpu_pool(pool: str, gpu_name: str, pool_gpu: str = "") -> bool:
    """Whether a run reported it trained on the CPU (``gpu_name`` "cpu") although its pool holds GPUs: the cluster
    file gives the pool a GPU model (``pool_gpu``), or the pool's name names one (gpu_6000ada). A pool of CPU slots
    (the local cluster on a machine without GPUs) is no such pool: its runs are its own hardware."""
    if not is_cpu_name(gpu_name):
        return False
    if pool_gpu.strip() and not is_cpu_name(pool_gpu):
        return True
    return gpu_model(pool) is not None


@lru_cache(maxsize=4096)
def hardware_label(pool: str, gpu_name: str = "", pool_gpu: str = "") -> str:
    """How the user's tables name a pool's hardware: gpu_6000ada -> 6000ada, gpu_h200 -> H200. A run whose GPU
    is another model than its pool's (a mixed pool) is named by the GPU it reported: "NVIDIA H100 80GB HBM3" in
    gpu_h200 -> H100, so it is never another GPU's row, baseline or speedup; one that trained on the CPU in a pool
    of GPUs (``pool_gpu``: the cluster file's GPU model of the pool) is CPU, for the same reason."""
    if cpu_in_gpu_pool(pool, gpu_name, pool_gpu):
        return CPU_LABEL
    if (other := reported_elsewhere(pool, gpu_name)) is not None:
        spec = hardware.match_gpu(other)
        return GPU_LABELS.get(other, spec.name if spec else other)
    return pool_label(pool or gpu_name)


def pool_label(name: str) -> str:
    """A pool's (else a GPU's) own label: without its ``gpu_`` prefix, a model code upper-cased (h200 -> H200,
    a800 -> A800, l40s -> L40S); any other name as it is (4090d, npu_ascend)."""
    name = re.sub(r"^gpu[_-]", "", name or UNKNOWN_HARDWARE)
    return name.upper() if re.fullmatch(r"[a-z]\d+[a-z]?", name) else name


def label_of(rec: RunRecord) -> str:
    """``rec``'s hardware as every table names it (``hardware_label``)."""
    return hardware_label(rec.pool, rec.gpu_name, rec.pool_gpu)


def cpu_fallback(rec: RunRecord) -> bool:
    """``rec`` trained on the CPU although its pool holds GPUs (``cpu_in_gpu_pool``)."""
    return cpu_in_gpu_pool(rec.pool, rec.gpu_name, rec.pool_gpu)


def same_gpu(a: RunRecord, b: RunRecord) -> bool:
    """Whether nothing says ``a`` and ``b`` ran on different GPU models (both reported a model, and they differ):
    a speedup is never across GPU models, whatever their pools are named."""
    ma, mb = gpu_model(a.gpu_name), gpu_model(b.gpu_name)
    return ma is None or mb is None or ma == mb


def unknown_hardware(rec: RunRecord) -> bool:
    """Whether nothing says which GPU ``rec`` ran on: two such runs may be on different cards, so neither is ever
    the other's baseline, nor compared with any hardware (their cells say why, never a guess)."""
    return label_of(rec) == UNKNOWN_HARDWARE
