"""GPU peak throughput (dense tensor TFLOP/s by precision) and MFU (no torch import: collect uses it).

Every figure is the vendor's dense peak (no 2:4 sparsity) with FP32 accumulate, because that is what PyTorch
runs. MFU divides achieved model FLOP/s by the peak of the precision actually run: BF16 under bf16 autocast,
TF32 for fp32 weights with TF32 matmuls, FP32 (no tensor cores) otherwise. It is never clamped: a value
above 1 means the FLOP count or the peak is wrong, and hiding that is how MFU tables go 17x astray.

API (stable; collect imports it):
- ``match_gpu(name) -> GpuSpec | None``: from ``torch.cuda.get_device_name()`` / ``nvidia-smi`` strings
  ("NVIDIA H100 80GB HBM3") or a cluster pool's model ("RTX 6000 Ada", "H200", "pro6000"). A name with a word
  that may name another part ("RTX 4090 D", "Max-Q") is None, never a near-match's peak.
- ``peak_tflops(gpu, precision) -> float | None``: ``gpu`` a GpuSpec or a name; precision bf16|fp16|tf32|fp32.
  None for an unknown GPU, and for a precision the GPU cannot run at its own rate (a V100 has no BF16; its "TF32"
  runs in FP32 and gets the FP32 peak):
  ``lacks_precision`` tells the two apart, so a report can say why MFU is missing. Never a made-up peak.
- ``achieved_tflops(flops_per_sample, samples_per_s, gpus)`` and ``mfu(achieved, peak) -> float | None``.
- ``local_gpus() -> tuple[str, ...]``: this machine's GPU names through NVML (pynvml, imported only when called:
  by a ``scheduler: local`` cluster file's ``cards: auto`` / ``gpu: auto``); () without a driver or GPUs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

PRECISIONS = ("bf16", "fp16", "tf32", "fp32")


@dataclass(frozen=True)
class GpuSpec:
    key: str  # short stable id, e.g. "h100-sxm"
    name: str  # human name, e.g. "H100 SXM"
    bf16: float | None  # dense TFLOP/s, FP32 accumulate (also FP16's, unless fp16 is set); None: no BF16 tensor cores
    tf32: float  # before Ampere (no TF32 units) the FP32 figure: the matmuls then run in FP32
    fp32: float  # CUDA cores, no tensor cores
    memory_gib: float
    source: str
    fp16: float | None = None  # only where FP16 differs from bf16 (Volta: FP16 tensor cores, no BF16 ones)

    def peak(self, precision: str) -> float | None:
        """Dense peak at ``precision``; None where this GPU has no tensor cores for it (never a made-up one)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        fp16 = self.fp16 if self.fp16 is not None else self.bf16
        return {"bf16": self.bf16, "fp16": fp16, "tf32": self.tf32, "fp32": self.fp32}[precision]


# Order matters for matching: more specific names (NVL, PCIe, PRO) are tried before their families.
GPUS: tuple[GpuSpec, ...] = (
    # NVIDIA H200 NVL product brief: 1,671 TFLOPS FP16 "with sparsity" -> ~835 dense; TF32 835 sparse -> ~417.
    GpuSpec("h200-nvl", "H200 NVL", 835.0, 417.0, 60.0, 141,
            "NVIDIA H200 NVL product brief (sparse figures halved)"),
    # NVIDIA H200 datasheet (SXM): same GH100 silicon and clocks as H100 SXM: 989 / 494.7 / 66.9 dense.
    GpuSpec("h200-sxm", "H200 SXM", 989.0, 494.7, 66.9, 141, "NVIDIA H200 datasheet (SXM), dense"),
    # NVIDIA H100 NVL product brief: 1,671 sparse FP16 -> ~835 dense, TF32 ~417, FP32 60.
    GpuSpec("h100-nvl", "H100 NVL", 835.0, 417.0, 60.0, 94,
            "NVIDIA H100 datasheet (NVL, sparse figures halved)"),
    # NVIDIA H100 datasheet: PCIe 1,513 sparse FP16 -> 756 dense, TF32 378, FP32 51.2; torchtitan uses 756e12.
    GpuSpec("h100-pcie", "H100 PCIe", 756.0, 378.0, 51.2, 80,
            "NVIDIA H100 datasheet (PCIe); torchtitan 756e12"),
    # NVIDIA H100 datasheet: SXM5 1,979 sparse FP16 -> 989.4 dense, TF32 494.7, FP32 66.9; torchtitan 989e12.
    GpuSpec("h100-sxm", "H100 SXM", 989.4, 494.7, 66.9, 80,
            "NVIDIA H100 datasheet (SXM5); torchtitan 989e12"),
    # NVIDIA RTX PRO 6000 Blackwell datasheet: 188 SMs; ~503.8 dense BF16 (FP32 acc), TF32 ~251.9, FP32 ~126.
    # Measured BF16 GEMMs reach 368-417, so MFU near 80% of this peak is the practical ceiling.
    GpuSpec("rtx-pro-6000", "RTX PRO 6000 Blackwell", 503.8, 251.9, 126.0, 96,
            "NVIDIA RTX PRO 6000 Blackwell datasheet (188 SMs), dense"),
    # NVIDIA Ada Lovelace whitepaper (RTX 6000 Ada): 364.2 dense FP16/BF16 tensor with FP32 accumulate
    # (728.5 sparse), TF32 182.1, FP32 91.1 (the figure the user's old table used as if it were BF16).
    GpuSpec("rtx-6000-ada", "RTX 6000 Ada", 364.2, 182.1, 91.1, 48, "NVIDIA Ada Lovelace whitepaper, dense"),
    # NVIDIA A100 datasheet: 312 BF16/FP16 dense, TF32 156, FP32 19.5.
    GpuSpec("a100", "A100", 312.0, 156.0, 19.5, 80, "NVIDIA A100 datasheet, dense"),
    # Ada whitepaper (GeForce RTX 4090): 330.3 FP16 with FP16 accumulate, 165.2 with FP32 accumulate (GeForce
    # runs it at half rate; PyTorch accumulates in FP32, pytorch#123157). TF32 82.6, FP32 82.6.
    GpuSpec("rtx-4090", "RTX 4090", 165.2, 82.6, 82.6, 24,
            "NVIDIA Ada Lovelace whitepaper (FP32 accumulate rate), dense"),
    # NVIDIA V100 datasheet (volta-v100-datasheet-update-us-1165301-r5): Volta's tensor cores run FP16 with FP32
    # accumulate only: no BF16 (None: no peak, so no MFU, never a guessed one). No TF32 either: PyTorch's TF32
    # switch does nothing there and the matmuls run in FP32 on the CUDA cores, so a "tf32" run's peak is the FP32
    # figure (the precision actually run). V100S PCIe: 130 / 16.4.
    GpuSpec("v100s-pcie", "V100S PCIe", None, 16.4, 16.4, 32,
            "NVIDIA V100 datasheet (V100S PCIe: 130 FP16 tensor, 16.4 FP32)", fp16=130.0),
    # V100 PCIe (16 or 32 GB, same clocks): 112 FP16 tensor, 14 FP32.
    GpuSpec("v100-pcie", "V100 PCIe", None, 14.0, 14.0, 32,
            "NVIDIA V100 datasheet (PCIe: 112 FP16 tensor, 14 FP32)", fp16=112.0),
    # V100 SXM2 ("V100 for NVLink"), 16 and 32 GB: 125 FP16 tensor, 15.7 FP32. DGX-2's SXM3 is read as SXM2.
    GpuSpec("v100-sxm-16gb", "V100 SXM2 16GB", None, 15.7, 15.7, 16,
            "NVIDIA V100 datasheet (SXM2/NVLink: 125 FP16 tensor, 15.7 FP32)", fp16=125.0),
    GpuSpec("v100-sxm", "V100 SXM2 32GB", None, 15.7, 15.7, 32,
            "NVIDIA V100 datasheet (SXM2/NVLink: 125 FP16 tensor, 15.7 FP32)", fp16=125.0),
)

# How a name is read. Normalisation lowercases and turns every non-alphanumeric run into one space
# ("NVIDIA RTX 6000 Ada Generation", "gpu_6000ada", "Tesla V100-PCIE-16GB"). A name must say exactly one model
# (a family below); its form words (PCIe, NVL; for the V100 also 16 GB), wherever they stand, pick the part; and
# every other word must be one that names no other part: vendor, architecture, memory size, "gpu". Any other word
# makes the name unknown: "RTX 4090 D" (the China-market part), "RTX PRO 6000 Blackwell Max-Q" (a lower-clocked
# part), "RTX 4090 Laptop", "H100 ... MIG 1g.10gb" (a slice), "gpu_h200_long". Unknown is said as unknown (no
# MFU, plan says "no known peak"); a near-match would give another part's peak without a word.


@dataclass(frozen=True)
class _Family:
    model: str  # regex over the normalised name: the words that name the model
    parts: dict[str, str]  # the name's form words, sorted and space-joined ("" none) -> GpuSpec key; else unknown
    words: str = ""  # regex: words this model's names also carry (architecture, edition) that name no other part


# A PCIe form word changes nothing for cards that are PCIe cards anyway, nor for the A100, whose datasheet gives
# PCIe and SXM the same peaks; the H100's and V100's PCIe parts are their own entries; there is no H200 PCIe.
_FAMILIES: tuple[_Family, ...] = (
    _Family(r"h200", {"": "h200-sxm", "nvl": "h200-nvl"}, r"hopper"),
    _Family(r"h100", {"": "h100-sxm", "nvl": "h100-nvl", "pcie": "h100-pcie"}, r"hopper"),  # "80GB HBM3": SXM
    _Family(r"(rtx ?)?pro ?6000", {"": "rtx-pro-6000", "pcie": "rtx-pro-6000"},
            r"rtx|blackwell|workstation|server|edition"),
    _Family(r"(rtx ?)?6000 ?ada", {"": "rtx-6000-ada", "pcie": "rtx-6000-ada"}, r"rtx|lovelace"),
    _Family(r"a100", {"": "a100", "pcie": "a100"}, r"ampere|tesla"),
    _Family(r"(rtx ?)?4090", {"": "rtx-4090", "pcie": "rtx-4090"}, r"geforce|rtx|ada|lovelace"),
    # nvidia-smi "Tesla V100-SXM2-32GB", "Tesla V100-PCIE-16GB", "Tesla V100S-PCIE-32GB"; bhosts -gpu
    # "TeslaV100_SXM2_32GB"; pools "V100", "gpu_v100", "gpu_v100_16gb". A bare V100 is the SXM2 32 GB part.
    _Family(r"(tesla ?)?v100s", {"": "v100s-pcie", "pcie": "v100s-pcie"}, r"volta|tesla"),
    _Family(r"(tesla ?)?v100", {"": "v100-sxm", "pcie": "v100-pcie", "16gb": "v100-sxm-16gb",
                                "16gb pcie": "v100-pcie"}, r"volta|tesla|nvlink"),
)
# Form words, wherever they stand in the name ("H100 80GB PCIe", "NVIDIA H100 PCIe", "h100pcie").
_FORMS = {"pcie": r"pcie|pci e|pci express", "nvl": r"nvl", "16gb": r"16 ?g(i?b)?"}
# Words any name may carry: vendor, "gpu", memory size and kind, SXM socket, "Generation".
_NEUTRAL = r"nvidia|gpus?|generation|sxm\d?|\d+ ?g(i?b)?|gb|hbm\d?e?|gddr\d+x?"
_BY_KEY = {g.key: g for g in GPUS}


def _normalise(name: str) -> str:
    text = " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())
    return re.sub(r"(\d|v100s)(pcie|nvl|sxm)", r"\1 \2", text)  # "h100pcie", "v100sxm2": words of their own


@cache
def _words(alternatives: str) -> re.Pattern[str]:
    """Whole words (or runs of them) of ``alternatives`` in a normalised name."""
    return re.compile(rf"(?:^| )(?:{alternatives})(?= |$)")


def _part(text: str, family: _Family) -> str | None:
    """The key of the part ``text`` names within ``family`` (whose model it names once); None for a form the
    family has no part for, or a word that names none of its parts."""
    text = _words(family.model).sub(" ", text, count=1)
    forms = [f for f, rx in _FORMS.items() if (f != "16gb" or any("16gb" in k for k in family.parts))
             and _words(rx).search(text)]
    for f in forms:
        text = _words(_FORMS[f]).sub(" ", text)
    rest = _words(_NEUTRAL + (f"|{family.words}" if family.words else "")).sub(" ", text)
    return family.parts.get(" ".join(sorted(forms))) if not rest.strip() else None


def match_gpu(name: str | None) -> GpuSpec | None:
    """The table entry for a device or pool name; None for unknown names and for "cpu". A name with a word that
    may name another part ("RTX 4090 D", "... Max-Q ...") is unknown: never another part's peak."""
    if not name:
        return None
    if name in _BY_KEY:
        return _BY_KEY[name]
    text = _normalise(name)
    found = [f for f in _FAMILIES if _words(f.model).search(text)]
    if len(found) != 1 or len(_words(found[0].model).findall(text)) != 1:
        return None  # no model, or two ("H100/H200")
    key = _part(text, found[0])
    return _BY_KEY[key] if key else None


def _spec(gpu: GpuSpec | str | None) -> GpuSpec | None:
    return match_gpu(gpu) if isinstance(gpu, str) or gpu is None else gpu


def peak_tflops(gpu: GpuSpec | str | None, precision: str) -> float | None:
    """Dense peak TFLOP/s of ``gpu`` at ``precision``; None when the GPU is unknown (e.g. CPU) or has no tensor
    cores for ``precision`` (a V100 at bf16: lacks_precision)."""
    spec = _spec(gpu)
    return spec.peak(precision) if spec else None


def lacks_precision(gpu: GpuSpec | str | None, precision: str) -> bool:
    """Whether ``gpu`` is a known GPU that has no peak at ``precision`` (Volta: no BF16 tensor cores),
    as opposed to an unknown GPU; False for an unknown GPU or precision."""
    spec = _spec(gpu)
    return spec is not None and precision in PRECISIONS and spec.peak(precision) is None


def achieved_tflops(flops_per_sample: float, samples_per_s: float, gpus: int = 1) -> float:
    """Model TFLOP/s per GPU: total model FLOPs per second divided evenly over ``gpus``."""
    return flops_per_sample * samples_per_s / max(gpus, 1) / 1e12


def mfu(achieved_tflops_per_gpu: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation as a fraction (0.45 = 45%); None without a peak. Never clamped."""
    if not peak:
        return None
    return achieved_tflops_per_gpu / peak


@cache
def local_gpus() -> tuple[str, ...]:
    """Names of this machine's GPUs in index order; () without pynvml, a driver or GPUs."""
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
