"""Training-step speed of the reference workload: steps/s, samples/s, achieved TFLOP/s, MFU, peak memory and
compile time, per model and batch, on synthetic latents (the data path is not imported: no decord needed).

The step is the training loop's own (``loop.micro_step`` + ``loop.optimizer_step``): diffusion loss
(MSE + VLB), backward, grad-norm, fused AdamW on CUDA, EMA. FLOPs are flops.py's analytic model FLOPs; MFU
divides by hardware.py's dense peak for the precision run. Memory: peak ``max_memory_allocated`` of the
timed steps, and the largest batch that fits an 80 GB and a 48 GB card, extrapolated linearly from the
static memory (weights, grads, AdamW, EMA) and the measured activations per sample.

    python benchmarks/train_step.py                       # CPU: tiny shapes, a smoke test
    python benchmarks/train_step.py --rows Latte-L/2@8 Latte-XL/2@8 Latte-L/2:4E2A@8 Latte-S/2@32
    python benchmarks/train_step.py --rows Latte-XL/2@16 --recompute -1   # activation checkpointing
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdimo.hardware import match_gpu, peak_tflops  # noqa: E402
from xdimo.train.diffusion import create_diffusion  # noqa: E402
from xdimo.train.flops import tokens_per_sample, train_flops_per_sample  # noqa: E402
from xdimo.train.loop import Ema, micro_step, optimizer_step, set_precision  # noqa: E402
from xdimo.train.models import ATTENTION_KERNELS, build_model  # noqa: E402
from xdimo.train.registry import ClipShape, get_model, param_counts  # noqa: E402
from xdimo.train.speed import COMPILE_SCOPES, SpeedOptions  # noqa: E402
from xdimo.train.speed import apply as apply_speed  # noqa: E402

CARDS_GIB = {"80GB": 79.0, "48GB": 47.0}  # usable memory of an H100/H200-class 80 GB and RTX 6000 Ada card


@dataclass
class Row:
    model: str
    batch: int
    recompute: int
    precision: str
    compiled: str  # compile scope: blocks | model | off
    residual: str
    steps_per_s: float = 0.0
    samples_per_s: float = 0.0
    tflops: float = 0.0
    mfu: float | None = None
    peak_gib: float = 0.0
    static_gib: float = 0.0
    act_gib_per_sample: float = 0.0
    fit_80gb: int = 0
    fit_48gb: int = 0
    compile_s: float = 0.0
    loss: float = 0.0
    error: str = ""


def speed_options(args: argparse.Namespace) -> SpeedOptions:
    return SpeedOptions(args.compile, args.recompute, args.temporal_attention, args.residual, args.inductor_tuning)


def set_inductor(pairs: list[str]) -> None:
    import torch._inductor.config as config

    for pair in pairs:
        key, _, value = pair.partition("=")
        setattr(config, key, {"True": True, "False": False}.get(value, value))


def parse_row(text: str) -> tuple[str, str | None, int]:
    """``Latte-L/2:4E2A@8`` -> ("Latte-L/2", "4E2A", 8)."""
    name, _, batch = text.partition("@")
    model, _, moe = name.partition(":")
    return model, moe or None, int(batch or 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model_name: str, moe: str | None, batch: int, args: argparse.Namespace,
            device: torch.device) -> Row:
    cfg = get_model(model_name, moe)
    clip = ClipShape(args.frames, args.image_size)
    label = cfg.label
    opts = speed_options(args)
    row = Row(label, batch, args.recompute, args.precision, opts.compile_scope(device), args.residual)
    torch.manual_seed(0)
    model = apply_speed(build_model(cfg, clip, device=device), opts, device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0, fused=device.type == "cuda")
    ema = Ema(model, 0.9999)
    diffusion = create_diffusion()
    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(batch, clip.frames, cfg.in_channels, clip.latent_size, clip.latent_size, device=device)

    def step() -> torch.Tensor:
        loss, _ = micro_step(model, diffusion, x0, g, args.precision, 0.01, 1.0)
        optimizer_step(params, opt, ema, math.inf)
        return loss

    t0 = time.perf_counter()
    for _ in range(args.warmup):  # compiles (forward and backward) and creates the optimizer state
        step()
    sync(device)
    row.compile_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        row.static_gib = torch.cuda.memory_allocated(device) / 2**30
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    sync(device)
    seconds = time.perf_counter() - t0
    row.loss = float(torch.stack(losses).mean())
    if args.profile:
        profile(step, device)
    row.steps_per_s = args.steps / seconds
    row.samples_per_s = row.steps_per_s * batch
    row.tflops = row.samples_per_s * train_flops_per_sample(cfg, clip) / 1e12
    if device.type == "cuda":
        peak = peak_tflops(match_gpu(torch.cuda.get_device_name(device)), args.precision)
        row.mfu = row.tflops / peak if peak else None
        row.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        row.act_gib_per_sample = (row.peak_gib - row.static_gib) / batch
        for card, cap in CARDS_GIB.items():
            fits = math.floor((cap - row.static_gib) / row.act_gib_per_sample) if row.act_gib_per_sample else 0
            setattr(row, f"fit_{card.lower()}", max(fits, 0))
    return row


def profile(step, device: torch.device) -> None:
    """Where the time goes: the top kernels of 3 steps (to pick the next lever)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=acts) as prof:
        for _ in range(3):
            step()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    print(events.table(sort_by=key, row_limit=25, max_name_column_width=70), flush=True)
    if device.type == "cuda":
        try:  # a coarse summary; a profiler API change must not cost the row
            print(kernel_shares(events), flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"kernel time: n/a ({e})", flush=True)


KERNEL_KINDS = (("gemm", ("nvjet", "gemm", "cutlass", "sm90_xmma", "cublas")),
                ("attention", ("cudnn", "fmha", "flash", "attention")),
                ("optimizer", ("adam", "foreach", "lerp")),
                ("fused (triton)", ("triton_",)))


def kernel_shares(events) -> str:
    """Device time of the profiled steps by kind of kernel, from their names (a coarse map of the time)."""
    totals: dict[str, float] = {}
    for e in events:
        t = getattr(e, "self_device_time_total", 0.0)
        if t <= 0 or e.key.startswith(("aten::", "cuda", "Torch", "Compiled", "autograd", "## ")):
            continue  # CPU-side ops carry their kernels' time too; count kernels only
        name = e.key.lower()
        kind = next((k for k, marks in KERNEL_KINDS if any(m in name for m in marks)), "other")
        totals[kind] = totals.get(kind, 0.0) + t
    whole = sum(totals.values()) or 1.0
    return "kernel time: " + ", ".join(f"{k} {v / whole:.1%}" for k, v in sorted(totals.items(),
                                                                              key=lambda kv: -kv[1]))


SDPA_FLAGS = {"cudnn": "enable_cudnn_sdp", "flash": "enable_flash_sdp", "efficient": "enable_mem_efficient_sdp",
              "math": "enable_math_sdp"}


def pick_sdpa(backend: str) -> None:
    """Allow only ``backend`` for F.scaled_dot_product_attention (auto: PyTorch's own choice)."""
    if backend == "auto":
        return
    for name, flag in SDPA_FLAGS.items():
        getattr(torch.backends.cuda, flag)(name == backend)


def attention_table(cfg, clip: ClipShape, batch: int, device: torch.device) -> None:
    """Forward+backward ms of the model's spatial and temporal attention shapes under each SDPA backend."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    S, Fr, h = clip.tokens_per_frame(cfg.patch), clip.frames, cfg.heads
    shapes = {"spatial": (batch * Fr, h, S, cfg.hidden // h), "temporal": (batch * S, h, Fr, cfg.hidden // h)}
    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    for kind, shape in shapes.items():
        q, k, v = (torch.randn(shape, device=device, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        cells = []
        for name, backend in backends.items():
            try:
                with sdpa_kernel(backend):
                    for i in range(13):
                        if i == 3:
                            sync(device)
                            t0 = time.perf_counter()
                        F.scaled_dot_product_attention(q, k, v).sum().backward()
                    sync(device)
                cells.append(f"{name} {(time.perf_counter() - t0) / 10 * 1e3:7.2f} ms")
            except RuntimeError as e:
                cells.append(f"{name} n/a ({str(e).splitlines()[0][:40]})")
        print(f"attention {kind:8s} {shape}: " + " | ".join(cells), flush=True)


def run_row(text: str, args: argparse.Namespace, device: torch.device) -> Row:
    model, moe, batch = parse_row(text)
    torch._dynamo.reset()  # each row compiles afresh: rows must not share (and exhaust) the compile cache
    try:
        return measure(model, moe, batch, args, device)
    except Exception as e:  # one failing row (OOM, a kernel missing on this torch) must not hide the rest
        label = f"{model}-{moe}" if moe else model
        kind = "OOM" if isinstance(e, torch.OutOfMemoryError) else type(e).__name__
        return Row(label, batch, args.recompute, args.precision, args.compile, args.residual,
                   error=f"{kind}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def fmt(row: Row) -> str:
    if row.error:
        return f"{row.model:16s} bs {row.batch:3d}  {row.error}"
    mfu = f"{100 * row.mfu:5.1f}%" if row.mfu is not None else "   - "
    return (f"{row.model:16s} bs {row.batch:3d} rc {row.recompute:2d} | {row.steps_per_s:7.3f} steps/s "
            f"{row.samples_per_s:8.2f} samples/s {row.tflops:8.2f} TFLOP/s MFU {mfu} | peak {row.peak_gib:6.2f} GiB "
            f"(static {row.static_gib:5.2f}, {row.act_gib_per_sample:5.2f}/sample; fits 80GB bs {row.fit_80gb}, "
            f"48GB bs {row.fit_48gb}) | compile {row.compile_s:6.1f} s | loss {row.loss:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="*", help="MODEL[:MOE]@BATCH ... (default: tiny CPU rows, full size on GPU)")
    p.add_argument("--frames", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--precision", default="bf16", choices=("bf16", "tf32", "fp32"))
    p.add_argument("--steps", type=int, default=None, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, optimizer state)")
    p.add_argument("--compile", default="auto", choices=COMPILE_SCOPES, help="what torch.compile compiles")
    p.add_argument("--residual", default="bf16", choices=("bf16", "fp32"), help="residual stream dtype (bf16 run)")
    p.add_argument("--inductor-tuning", action="store_true", help="Inductor coordinate-descent tuning")
    p.add_argument("--inductor", nargs="*", default=[], metavar="KEY=VALUE",
                   help="set torch._inductor.config values (experiments, e.g. max_autotune=True)")
    p.add_argument("--memory-cap-gib", type=float, help="cap the caching allocator (e.g. 47: a 48 GB card)")
    p.add_argument("--recompute", type=int, default=0, help="activation checkpointing of N blocks (-1: all)")
    p.add_argument("--sdpa", default="auto", choices=("auto", *SDPA_FLAGS), help="attention backend")
    p.add_argument("--temporal-attention", default="matmul", choices=ATTENTION_KERNELS)
    p.add_argument("--attention", action="store_true", help="time each SDPA backend on each row's shapes")
    p.add_argument("--profile", action="store_true", help="print the top kernels of 3 more steps per row")
    p.add_argument("--json", type=Path, help="also append each row as JSON to this file")
    p.add_argument("--label", default="", help="a name for these rows in the JSON (sweep.py's row labels)")
    args = p.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    args.frames = args.frames or (16 if cuda else 4)
    args.image_size = args.image_size or (256 if cuda else 64)
    args.steps = args.steps or (10 if cuda else 5)
    rows = args.rows or (["Latte-L/2@8", "Latte-XL/2@8", "Latte-L/2:4E2A@8", "Latte-S/2@32"] if cuda
                         else ["Latte-T/2@2", "Latte-T/2:4E2A@2"])
    set_precision(args.precision)
    set_inductor(args.inductor)
    if cuda and args.memory_cap_gib:  # what a smaller card would hold: an allocation past it raises OOM
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_cap_gib * 2**30 / total), device)
    pick_sdpa(args.sdpa)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"device {name} | torch {torch.__version__} | {args.precision} | sdpa {args.sdpa} | "
          f"temporal {args.temporal_attention} | residual {args.residual} | compile {args.compile}"
          f"{' +tuning' if args.inductor_tuning else ''} {' '.join(args.inductor)}| "
          f"clip {args.frames}x{args.image_size}^2 "
          f"| {args.steps} timed steps after {args.warmup}", flush=True)
    for text in rows:
        model, moe, _ = parse_row(text)
        cfg = get_model(model, moe)
        clip = ClipShape(args.frames, args.image_size)
        print(f"# {cfg.label}: {param_counts(cfg, clip).total / 1e6:.2f}M params, "
              f"{train_flops_per_sample(cfg, clip) / 1e12:.4f} TFLOP/sample, "
              f"{tokens_per_sample(cfg, clip)} tokens/sample", flush=True)
        if args.attention:
            attention_table(cfg, clip, parse_row(text)[2], device)
            continue
        row = run_row(text, args, device)
        print(fmt(row), flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps({"device": name, "torch": torch.__version__, "label": args.label,
                                    "argv": sys.argv[1:], **asdict(row)}) + "\n")


if __name__ == "__main__":
    main()
