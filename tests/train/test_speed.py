"""The speed knobs (train/speed.py) on CPU: each is set where the model reads it, none changes the function
beyond rounding (bf16 residual stream, whole-model compile), and a bf16 run still tracks fp32's loss."""

import json

import pytest
import torch

from xdimo.train.__main__ import main
from xdimo.train.models import Latte
from xdimo.train.registry import ClipShape, ModelConfig
from xdimo.train.speed import SpeedOptions, apply

TINY = ModelConfig(name="Latte-T/2", depth=4, hidden=32, heads=4, patch=2)
CLIP = ClipShape(frames=4, image_size=64)
CPU = torch.device("cpu")


def _model() -> Latte:
    torch.manual_seed(0)
    model = Latte(TINY, CLIP)
    with torch.no_grad():  # away from adaLN-Zero's all-zero start, so every path carries signal
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return model


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 4, 8, 8, generator=g), torch.tensor([3, 700])


def test_apply_sets_each_option_where_the_model_reads_it():
    model = apply(_model(), SpeedOptions(compile="off", recompute_blocks=-1, temporal_attention="matmul",
                                         residual="fp32"), CPU)
    assert model.recompute == {0, 1, 2, 3}
    assert [b.attn.kernel for b in model.blocks] == ["sdpa", "matmul", "sdpa", "matmul"]  # temporal only
    assert model.low_precision_residual is False
    model = apply(_model(), SpeedOptions(compile="off", recompute_blocks=2, temporal_attention="sdpa"), CPU)
    assert model.recompute == {0, 1} and {b.attn.kernel for b in model.blocks} == {"sdpa"}
    assert model.low_precision_residual is True


@pytest.mark.parametrize(("asked", "cpu", "cuda"), [("auto", "off", "blocks"), ("on", "blocks", "blocks"),
                                                     ("model", "model", "model"), ("off", "off", "off")])
def test_compile_scope(asked, cpu, cuda):
    opts = SpeedOptions(compile=asked)
    assert (opts.compile_scope(CPU), opts.compile_scope(torch.device("cuda"))) == (cpu, cuda)


def _forward(model: Latte, dtypes: list[torch.dtype]) -> torch.Tensor:
    hooks = [b.register_forward_pre_hook(lambda _m, args: dtypes.append(args[0].dtype)) for b in model.blocks]
    x, t = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = model(x, t)
    for h in hooks:
        h.remove()
    return out.float()


def test_bf16_residual_stream_is_bf16_and_computes_the_same_function():
    seen_low: list[torch.dtype] = []
    low = _forward(apply(_model(), SpeedOptions(compile="off", residual="bf16"), CPU), seen_low)
    seen_full: list[torch.dtype] = []
    full = _forward(apply(_model(), SpeedOptions(compile="off", residual="fp32"), CPU), seen_full)
    assert set(seen_low) == {torch.bfloat16} and set(seen_full) == {torch.float32}
    assert torch.count_nonzero(full) > 0
    # bf16 rounding of the stream, not a different function: a few bf16 ulps (2^-8) relative.
    assert ((low - full).norm() / full.norm()).item() < 2e-2


def test_whole_model_compile_matches_eager():
    x, t = _inputs()
    eager = _model()
    compiled = apply(_model(), SpeedOptions(compile="model", residual="fp32"), CPU)
    (e, _), (c, _) = eager(x, t), compiled(x, t)
    torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)
    e.square().mean().backward()
    c.square().mean().backward()
    for pe, pc in zip(eager.parameters(), compiled.parameters(), strict=True):
        if pe.grad is not None:
            torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-3, atol=1e-5)


def _losses(run_dir, precision: str) -> list[float]:
    # A high learning rate, so the model leaves its adaLN-Zero start and numerics can show in the loss.
    argv = ["--run-dir", str(run_dir), "--model", "Latte-S/2", "--depth", "2", "--hidden", "48", "--heads", "4",
            "--frames", "4", "--image-size", "64", "--local-batch", "4", "--steps", "40", "--log-every", "5",
            "--lr", "3e-3", "--precision", precision, "--compile", "off", "--parallel", "single", "--seed", "3"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speed = json.loads((run_dir / "run.json").read_text())["speed"]
    assert speed["residual_requested"] == "bf16"  # run.json records what ran: no residual dtype without autocast
    assert speed["residual"] == ("bf16" if precision == "bf16" else None)
    return [r["loss"] for r in rows]


def test_a_bf16_run_with_the_bf16_residual_tracks_the_fp32_loss_curve(tmp_path):
    bf16, fp32 = _losses(tmp_path / "bf16", "bf16"), _losses(tmp_path / "fp32", "fp32")
    assert len(bf16) == len(fp32) == 8
    assert fp32[0] > 2 * fp32[-1]  # it learns (0.95 -> 0.29 when written), so the curves can differ
    assert bf16 == pytest.approx(fp32, rel=0.02)  # measured within 0.3% at every point


def test_auto_temporal_attention_is_the_matmuls_off_cuda_and_reported_as_what_ran():
    opts = SpeedOptions(compile="off")
    assert opts.temporal_attention == "auto" and opts.temporal_kernel(CPU) == "matmul"
    model = apply(_model(), opts, CPU)
    assert {b.attn.kernel for b in model.blocks if b.temporal} == {"matmul"}
    used = opts.used(CPU, "bf16", 4)
    assert used["temporal_attention"] == "matmul" and used["temporal_attention_requested"] == "auto"
    assert SpeedOptions(temporal_attention="reduce").temporal_kernel(CPU) == "reduce"  # an explicit choice stands


def _cuda(monkeypatch, capability=(9, 0), probe=None):
    """A CUDA device for SpeedOptions on this CPU machine: its capability and the kernel's probe answer."""
    from xdimo.train import short_attention

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(short_attention, "probe", lambda device, dtype, head_dim: probe)
    return torch.device("cuda")


def test_auto_takes_the_triton_kernel_where_it_was_timed_and_its_probe_passes(monkeypatch):
    cuda = _cuda(monkeypatch)
    opts = SpeedOptions().settle(cuda, "bf16", 72)
    assert opts.temporal_kernel(cuda) == "triton" and opts.temporal_note is None
    used = opts.used(cuda, "bf16", 4)
    assert used["temporal_attention"] == "triton" and used["temporal_attention_note"] is None


@pytest.mark.parametrize(("capability", "precision", "probe", "why"), [
    ((8, 9), "bf16", None, "timed on Hopper (sm_90) only (this GPU: sm_89)"),  # the user's RTX 6000 Ada
    ((12, 0), "bf16", None, "timed on Hopper (sm_90) only (this GPU: sm_120)"),  # RTX PRO 6000 Blackwell
    ((9, 0), "tf32", None, "timed in bf16 only (this run: tf32)"),
    ((9, 0), "bf16", "the Triton kernel failed on cuda: RuntimeError: x", "the Triton kernel failed on cuda: "
                                                                           "RuntimeError: x"),
])
def test_auto_keeps_the_matmuls_where_the_kernel_is_unmeasured_or_refused(monkeypatch, capability, precision,
                                                                         probe, why):
    cuda = _cuda(monkeypatch, capability, probe)
    opts = SpeedOptions().settle(cuda, precision, 64)
    assert (opts.temporal_kernel(cuda), opts.temporal_note) == ("matmul", why)
    assert opts.used(cuda, precision, 4)["temporal_attention_note"] == why
    assert SpeedOptions(temporal_attention="triton").settle(cuda, precision, 64).temporal_kernel(cuda) == "triton"


def test_every_rank_takes_the_matmuls_if_any_rank_refused(monkeypatch):
    cuda = _cuda(monkeypatch)  # this rank's GPU passes
    opts = SpeedOptions().settle(cuda, "bf16", 64, any_rank=lambda refused: True)
    assert opts.temporal_kernel(cuda) == "matmul"
    assert opts.temporal_note == "another rank's GPU refused the Triton kernel"
    votes = []
    SpeedOptions(temporal_attention="matmul").settle(cuda, "bf16", 64, any_rank=votes.append)
    assert votes == []  # an explicit choice needs no vote: every rank has it from the same flags


def test_apply_puts_the_settled_kernel_on_the_temporal_blocks(monkeypatch):
    opts = SpeedOptions(compile="off").settle(_cuda(monkeypatch, (8, 9)), "bf16", 8)
    model = apply(_model(), opts, CPU)  # the settled choice is what counts, wherever the model sits
    assert [b.attn.kernel for b in model.blocks] == ["sdpa", "matmul", "sdpa", "matmul"]
