"""Training-step speed of the reference workload: steps/s, samples/s, achieved TFLOP/s, MFU, peak memory and
compile time, per model and batch, on synthetic latents (the data path is not imported: no decord needed).
Each row times ``--windows`` windows of ``--steps`` steps and prints each window's samples/s and their spread,
so that a difference between two rows can be told from noise.

The step is the training loop's own (``loop.micro_step`` + ``loop.optimizer_step``): diffusion loss
(MSE + VLB), backward, grad-norm, fused AdamW on CUDA, EMA. FLOPs are flops.py's analytic model FLOPs; MFU
divides by hardware.py's dense peak for the precision run. Memory: peak ``max_memory_allocated`` of the
timed steps, and the largest batch that fits an 80 GB and a 48 GB card, extrapolated linearly from the
static memory (weights, grads, AdamW, EMA) and the measured activations per sample: the peak less weights,
AdamW and EMA, and less the gradients that existed at the peak (one more step, probed, shows how many).

    python benchmarks/train_step.py                       # CPU: tiny shapes, a smoke test
    python benchmarks/train_step.py --rows Latte-L/2@8 Latte-XL/2@8 Latte-L/2:4E2A@8 Latte-S/2@32
    python benchmarks/train_step.py --rows Latte-XL/2@16 --recompute -1   # activation checkpointing
    python benchmarks/train_step.py --rows Latte-L/2@16 --inductor max_autotune_gemm=True   # Inductor configs
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdimo.hardware import match_gpu, peak_tflops  # noqa: E402
from xdimo.train.diffusion import create_diffusion  # noqa: E402
from xdimo.train.flops import tokens_per_sample, train_flops_per_sample  # noqa: E402
from xdimo.train.loop import micro_step, optimizer_step  # noqa: E402
from xdimo.train.models import build_model  # noqa: E402
from xdimo.train.optim import Ema, set_precision  # noqa: E402
from xdimo.train.registry import ClipShape, check_shape, get_model, param_counts  # noqa: E402
from xdimo.train.speed import COMPILE_SCOPES, TEMPORAL_CHOICES, SpeedOptions  # noqa: E402
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
    reserved_gib: float = 0.0  # peak of the caching allocator's reservation: what a memory cap limits
    static_gib: float = 0.0  # weights, gradients, AdamW state, EMA
    grads_at_peak_gib: float = 0.0  # the part of the gradients that existed at the peak
    act_gib_per_sample: float = 0.0
    fit_80gb: int = 0
    fit_48gb: int = 0
    compile_s: float = 0.0
    loss: float = 0.0
    window_samples_per_s: list[float] = field(default_factory=list)  # each timed window's samples/s
    spread: float = 0.0  # (fastest - slowest window) / mean: differences between rows below this are noise
    error: str = ""
    temporal: str = ""  # the temporal-attention kernel that ran (auto settled)
    temporal_note: str | None = None  # why auto did not run the Triton kernel


def speed_options(args: argparse.Namespace) -> SpeedOptions:
    return SpeedOptions(args.compile, args.recompute, args.temporal_attention, args.residual, args.inductor_tuning)


def parse_inductor(pairs: list[str]) -> dict[str, object]:
    """``["coordinate_descent_search_radius=2", "triton.enable_persistent_tma_matmul=True"]`` -> typed values: a
    Python literal (True, 2, 0.5, None, "x") where the text is one, else the text itself (``TRITON,ATEN``).
    Raises ValueError for a name torch._inductor.config does not have (a typo, or a config this torch lacks)."""
    import torch._inductor.config as config

    values: dict[str, object] = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"--inductor {pair!r}: expected KEY=VALUE")
        if not hasattr(config, key):
            raise ValueError(f"unknown Inductor config {key!r} in torch {torch.__version__}")
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[key] = text
    return values


def set_inductor(pairs: list[str]) -> None:
    import torch._inductor.config as config

    for key, value in parse_inductor(pairs).items():
        setattr(config, key, value)


def parse_row(text: str) -> tuple[str, str | None, int]:
    """``Latte-L/2:4E2A@8`` -> ("Latte-L/2", "4E2A", 8); ValueError, naming the row, for one that is not."""
    name, _, batch = text.partition("@")
    model, _, moe = name.partition(":")
    try:
        size = int(batch or 1)
    except ValueError:
        size = 0
    if size < 1 or not model:
        raise ValueError(f"--rows {text!r}: expected MODEL[:MOE]@BATCH with a batch >= 1, e.g. Latte-L/2:4E2A@8")
    return model, moe or None, size


def check_rows(rows: list[str], frames: int, image_size: int) -> None:
    """Every row names a known model and MoE, and fits the clip: ValueError, one line, before any row runs."""
    for text in rows:
        model, moe, _ = parse_row(text)
        try:
            check_shape(get_model(model, moe), ClipShape(frames, image_size))
        except ValueError as e:
            raise ValueError(f"--rows {text!r}: {e}") from None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def grad_bytes(params: list[torch.Tensor]) -> int:
    """Bytes of the gradients of ``params`` (they take each parameter's dtype: fp32 master weights here)."""
    return sum(p.numel() * p.element_size() for p in params)


def grads_before_peak(marks: list[tuple[int, int]], peak: int, total: int) -> int:
    """Gradient bytes that existed at a step's memory peak, from ``marks``: (gradient bytes accumulated so far,
    peak allocation so far) after each parameter's gradient was accumulated. The peak came after the last mark
    that had not reached it; none reached it: after the last gradient (the optimizer step), all of them."""
    before = 0
    for done, seen in marks:
        if seen >= peak:
            return before
        before = done
    return total


def grads_at_peak(step, params: list[torch.Tensor], device: torch.device) -> int:
    """Run one more step, noting the allocator's peak as each gradient is accumulated; returns the gradient
    bytes that existed at that step's peak. Without recomputation the peak is usually at the start of the
    backward, before most gradients exist; with every block recomputed at a small batch, at its end."""
    marks: list[tuple[int, int]] = []
    done = 0

    def hook(p: torch.Tensor) -> None:
        nonlocal done
        done += p.numel() * p.element_size()
        marks.append((done, torch.cuda.max_memory_allocated(device)))  # host-side counters: no sync

    handles = [p.register_post_accumulate_grad_hook(hook) for p in params]
    try:
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
    finally:
        for h in handles:
            h.remove()
    return grads_before_peak(marks, torch.cuda.max_memory_allocated(device), grad_bytes(params))


def largest_batch(cap: float, static0: float, grads: float, grads_peak: float, act: float, batch: int) -> int:
    """The largest batch whose peak stays under ``cap`` (all in GiB): peak(B) = static0 (weights, AdamW, EMA)
    + the gradients that exist at the peak + act * B. At batches from the measured one up, the peak holds at
    most the gradients it held at the measured batch (more activations move it earlier in the backward,
    where fewer gradients exist yet); below it, it may hold all of them. Activations only: allocator
    fragmentation (reserved_gib - peak_gib) is not in it."""
    if act <= 0:
        return 0
    up = math.floor((cap - static0 - grads_peak) / act)
    if up >= batch:
        return up
    return max(math.floor((cap - static0 - grads) / act), 0)


def measure(model_name: str, moe: str | None, batch: int, args: argparse.Namespace,
            device: torch.device) -> Row:
    cfg = get_model(model_name, moe)
    clip = ClipShape(args.frames, args.image_size)
    label = cfg.label
    opts = speed_options(args).settle(device, args.precision, cfg.hidden // cfg.heads)
    row = Row(label, batch, args.recompute, args.precision, opts.compile_scope(device), args.residual,
              temporal=opts.temporal_kernel(device), temporal_note=opts.temporal_note)
    if device.type == "cuda" and opts.temporal_note:
        print(f"note: --temporal-attention auto runs the matmuls: {opts.temporal_note}", flush=True)
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
        # as the loop between its log rows (1 step in log_every): no clipping, no gradient norm
        optimizer_step(params, opt, ema, math.inf, measure=False)
        return loss

    t0 = time.perf_counter()
    for _ in range(args.warmup):  # compiles (forward and backward) and creates the optimizer state
        step()
    sync(device)
    row.compile_s = time.perf_counter() - t0
    static0 = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        # Between steps the gradients are None (optimizer_step zeroes with set_to_none=True), so this holds
        # weights, AdamW state and EMA only. The fp32 gradients do not grow with the batch either, but they are
        # allocated during every backward: whatever of them exists at the peak, counted in (peak - static),
        # would pass for activations and be scaled with the batch (the batch-fit estimate then comes out low;
        # far too low with every block recomputed, where the activations are small and the gradients are all
        # there at the peak). So static_gib counts them, and grads_at_peak() measures how much of them the
        # peak held, which comes off the activations.
        static0 = torch.cuda.memory_allocated(device)
        row.static_gib = (static0 + grad_bytes(params)) / 2**30
    losses, seconds = [], []
    for _ in range(max(args.windows, 1)):  # several windows: their spread says how far one figure is noise
        sync(device)
        t0 = time.perf_counter()
        losses += [step() for _ in range(args.steps)]
        sync(device)
        seconds.append(time.perf_counter() - t0)
    row.loss = float(torch.stack(losses).mean())
    if device.type == "cuda":
        row.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        row.reserved_gib = torch.cuda.max_memory_reserved(device) / 2**30
    if args.profile:
        profile(step, device)
    row.window_samples_per_s = [round(args.steps * batch / s, 3) for s in seconds]
    row.steps_per_s = args.steps * len(seconds) / sum(seconds)
    row.samples_per_s = row.steps_per_s * batch
    rates = row.window_samples_per_s
    row.spread = (max(rates) - min(rates)) / (sum(rates) / len(rates))
    row.tflops = row.samples_per_s * train_flops_per_sample(cfg, clip) / 1e12
    if device.type == "cuda":
        peak = peak_tflops(match_gpu(torch.cuda.get_device_name(device)), args.precision)
        row.mfu = row.tflops / peak if peak else None
        grads = grad_bytes(params)
        try:
            at_peak = grads_at_peak(step, params, device)
        except Exception as e:  # noqa: BLE001 - the probe must not cost the row: assume all gradients
            print(f"gradients at the peak: not measured ({type(e).__name__}: {e}); all counted", flush=True)
            at_peak = grads
        row.grads_at_peak_gib = at_peak / 2**30
        static0_gib = static0 / 2**30
        row.act_gib_per_sample = max(row.peak_gib - static0_gib - row.grads_at_peak_gib, 0.0) / batch
        for card, cap in CARDS_GIB.items():
            setattr(row, f"fit_{card.lower()}", largest_batch(cap, static0_gib, grads / 2**30,
                                                               row.grads_at_peak_gib, row.act_gib_per_sample,
                                                               batch))
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
    """Device time of the profiled steps by kind of kernel, from their names (a coarse map of the time).
    Kernels only: the CPU-side rows carry their kernels' device time too (aten ops, Inductor's launchers, which
    share the kernel's name, and "Command Buffer Full", the host waiting for room in the launch queue); counting
    them counted the Triton kernels twice (the 2026-11-24 profile's shares were wrong so)."""
    from torch.autograd import DeviceType

    totals: dict[str, float] = {}
    for e in events:
        t = getattr(e, "self_device_time_total", 0.0)
        if t <= 0 or getattr(e, "device_type", None) != DeviceType.CUDA:
            continue
        name = e.key.lower()
        kind = next((k for k, marks in KERNEL_KINDS if any(m in name for m in marks)), "other")
        totals[kind] = totals.get(kind, 0.0) + t
    if not totals:
        return "kernel time: n/a (the profile has no device kernel rows)"
    whole = sum(totals.values())
    return f"kernel time ({whole / 1e3:.1f} ms): " + ", ".join(
        f"{k} {v / whole:.1%}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]))


SDPA_FLAGS = {"cudnn": "enable_cudnn_sdp", "flash": "enable_flash_sdp", "efficient": "enable_mem_efficient_sdp",
              "math": "enable_math_sdp"}


def pick_sdpa(backend: str) -> None:
    """Allow only ``backend`` for F.scaled_dot_product_attention (auto: PyTorch's own choice)."""
    if backend == "auto":
        return
    for name, flag in SDPA_FLAGS.items():
        getattr(torch.backends.cuda, flag)(name == backend)


def median_ms(fn, device: torch.device, warmup: int = 3, repeats: int = 9, inner: int = 5
              ) -> tuple[float, float, float]:
    """(median, fastest, slowest) ms per call of ``fn`` over ``repeats`` timings of ``inner`` calls each."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / inner * 1e3)
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def attention_table(cfg, clip: ClipShape, batch: int, device: torch.device) -> None:
    """Forward+backward ms of the model's spatial and temporal attention shapes under each SDPA backend: the
    median of several timings of ``torch.autograd.grad(out, (q, k, v), dout)`` with a fixed random ``dout``,
    so no loss reduction, all-ones gradient or accumulation into ``.grad`` is timed with the kernels."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    S, Fr, h = clip.tokens_per_frame(cfg.patch), clip.frames, cfg.heads
    shapes = {"spatial": (batch * Fr, h, S, cfg.hidden // h), "temporal": (batch * S, h, Fr, cfg.hidden // h)}
    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    gen = torch.Generator(device=device).manual_seed(0)
    for kind, shape in shapes.items():
        q, k, v, dout = (torch.randn(shape, device=device, dtype=torch.bfloat16, generator=gen) for _ in range(4))
        q, k, v = (t.requires_grad_() for t in (q, k, v))

        def fwd_bwd(q=q, k=k, v=v, dout=dout) -> None:
            torch.autograd.grad(F.scaled_dot_product_attention(q, k, v), (q, k, v), dout)

        cells = []
        for name, backend in backends.items():
            try:
                with sdpa_kernel(backend):
                    med, lo, hi = median_ms(fwd_bwd, device)
                cells.append(f"{name} {med:7.2f} ms ({lo:.2f}-{hi:.2f})")
            except RuntimeError as e:
                cells.append(f"{name} n/a ({str(e).splitlines()[0][:40]})")
        print(f"attention {kind:8s} {shape}: " + " | ".join(cells), flush=True)


def run_row(text: str, args: argparse.Namespace, device: torch.device) -> Row:
    model, moe, batch = parse_row(text)
    torch._dynamo.reset()  # each row compiles afresh: rows must not share (and exhaust) the compile cache
    try:
        return measure(model, moe, batch, args, device)
    except Exception as e:  # one failing row (OOM, a kernel missing on this torch) must not hide the rest
        kind = "OOM" if isinstance(e, torch.OutOfMemoryError) else type(e).__name__
        if kind != "OOM":  # the row keeps one line; where it broke goes to stderr (a CUDA error's op, say)
            traceback.print_exc()
        return error_row(text, args, f"{kind}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def fmt(row: Row) -> str:
    if row.error:
        return f"{row.model:16s} bs {row.batch:3d}  {row.error}"
    mfu = f"{100 * row.mfu:5.1f}%" if row.mfu is not None else "   - "
    windows = "/".join(f"{w:.2f}" for w in row.window_samples_per_s)
    return (f"{row.model:16s} bs {row.batch:3d} rc {row.recompute:2d} {row.temporal:6s} | "
            f"{row.steps_per_s:7.3f} steps/s "
            f"{row.samples_per_s:8.2f} samples/s (windows {windows}, spread {100 * row.spread:.1f}%) "
            f"{row.tflops:8.2f} TFLOP/s MFU {mfu} | {memory_text(row)} "
            f"| compile {row.compile_s:6.1f} s | loss {row.loss:.4f}")


def memory_text(row: Row) -> str:
    """The memory figures; on CPU (no CUDA allocator: nothing measured) a plain n/a, not zeros that read as
    a measurement."""
    if row.peak_gib == 0 and row.reserved_gib == 0:
        return "memory n/a (no CUDA allocator)"
    return (f"peak {row.peak_gib:6.2f} GiB, reserved {row.reserved_gib:6.2f} "
            f"(static {row.static_gib:5.2f} with grads, {row.grads_at_peak_gib:4.2f} of them at the peak, "
            f"{row.act_gib_per_sample:5.2f}/sample; fits 80GB bs {row.fit_80gb}, 48GB bs {row.fit_48gb})")


def error_row(text: str, args: argparse.Namespace, error: str) -> Row:
    model, moe, batch = parse_row(text)
    return Row(f"{model}-{moe}" if moe else model, batch, args.recompute, args.precision, args.compile,
               args.residual, error=error)


def write_json(path: Path | None, name: str, args: argparse.Namespace, row: Row) -> None:
    if path:
        with path.open("a") as f:
            f.write(json.dumps({"device": name, "torch": torch.__version__, "label": args.label,
                                "argv": sys.argv[1:], **asdict(row)}) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="*", help="MODEL[:MOE]@BATCH ... (default: tiny CPU rows, full size on GPU)")
    p.add_argument("--frames", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--precision", default="bf16", choices=("bf16", "tf32", "fp32"))
    p.add_argument("--steps", type=int, default=None, help="timed steps per window")
    p.add_argument("--windows", type=int, default=2, help="timed windows per row (their spread is printed)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, optimizer state)")
    p.add_argument("--compile", default="auto", choices=COMPILE_SCOPES, help="what torch.compile compiles")
    p.add_argument("--residual", default="bf16", choices=("bf16", "fp32"), help="residual stream dtype (bf16 run)")
    p.add_argument("--inductor-tuning", action="store_true", help="Inductor coordinate-descent tuning")
    p.add_argument("--inductor", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="set torch._inductor.config values, Python literals (max_autotune_gemm=True "
                        "coordinate_descent_search_radius=2); given twice, both apply")
    p.add_argument("--memory-cap-gib", type=float, help="cap the caching allocator (e.g. 47: a 48 GB card)")
    p.add_argument("--recompute", type=int, default=0, help="activation checkpointing of N blocks (-1: all)")
    p.add_argument("--sdpa", default="auto", choices=("auto", *SDPA_FLAGS), help="attention backend")
    p.add_argument("--temporal-attention", default="auto", choices=TEMPORAL_CHOICES)
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
    try:
        check_rows(rows, args.frames, args.image_size)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    set_precision(args.precision)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    try:
        set_inductor(args.inductor)
    except ValueError as e:  # each row fails with the reason (in the JSON too), not a traceback
        for text in rows:
            row = error_row(text, args, f"ValueError: {e}")
            print(fmt(row), flush=True)
            write_json(args.json, name, args, row)
        sys.exit(2)
    if cuda and args.memory_cap_gib:  # what a smaller card would hold: an allocation past it raises OOM
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_cap_gib * 2**30 / total), device)
    pick_sdpa(args.sdpa)
    print(f"device {name} | torch {torch.__version__} | {args.precision} | sdpa {args.sdpa} | "
          f"temporal {args.temporal_attention} | residual {args.residual} | compile {args.compile}"
          f"{' +tuning' if args.inductor_tuning else ''} {' '.join(args.inductor)} | "
          f"clip {args.frames}x{args.image_size}^2 "
          f"| {args.windows} x {args.steps} timed steps after {args.warmup}", flush=True)
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
        write_json(args.json, name, args, row)


if __name__ == "__main__":
    main()
