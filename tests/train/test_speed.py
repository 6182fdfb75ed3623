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


def test_auto_temporal_attention_is_the_triton_kernel_on_cuda_where_its_probe_passes(monkeypatch):
    from xdimo.train import short_attention

    cuda = torch.device("cuda")
    monkeypatch.setattr(short_attention, "probe", lambda device: None)
    assert SpeedOptions().temporal_kernel(cuda) == "triton"
    assert SpeedOptions().used(cuda, "bf16", 4)["temporal_attention_note"] is None
    why = "the Triton kernel failed on cuda: RuntimeError: no sm_120 support"
    monkeypatch.setattr(short_attention, "probe", lambda device: why)  # an untested GPU: still trains
    assert SpeedOptions().temporal_kernel(cuda) == "matmul"
    assert SpeedOptions().used(cuda, "bf16", 4)["temporal_attention_note"] == why
    assert SpeedOptions(temporal_attention="triton").temporal_kernel(cuda) == "triton"  # asked for: no probe
