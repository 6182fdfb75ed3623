"""The short-sequence attention kernel (train/short_attention.py), run by Triton's interpreter on the CPU (fp32;
the bf16 path runs on a GPU only): forward and backward against a float64 reference, inside the model, under
torch.compile, and the one-line refusal where it cannot run."""

import pytest
import torch

pytest.importorskip("triton")  # without a GPU, tests/conftest.py has chosen Triton's interpreter

from xdimo.train import short_attention as sa  # noqa: E402
from xdimo.train.__main__ import main  # noqa: E402
from xdimo.train.models import Attention, Latte  # noqa: E402
from xdimo.train.registry import ClipShape, ModelConfig  # noqa: E402
from xdimo.train.speed import SpeedOptions, apply  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def reference(qkv: torch.Tensor, scale: float) -> torch.Tensor:
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (N, H, L, D)
    w = torch.softmax(q @ k.transpose(-1, -2) * scale, -1)
    return (w @ v).transpose(1, 2)  # (N, L, H, D)


@pytest.mark.parametrize(("N", "L", "H", "D"), [(3, 16, 2, 64), (2, 5, 3, 72), (2, 33, 1, 16)])
def test_forward_and_backward_match_float64(N, L, H, D):
    qkv = torch.randn(N, L, 3, H, D, dtype=torch.float64, device=DEVICE)
    mine, ref = qkv.float().requires_grad_(), qkv.clone().requires_grad_()
    scale = D ** -0.5
    out, want = sa.short_attention(mine, scale), reference(ref, scale)
    assert out.shape == (N, L, H, D)
    torch.testing.assert_close(out.double(), want, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(want)
    (out.double() * g).sum().backward()
    (want * g).sum().backward()
    torch.testing.assert_close(mine.grad.double(), ref.grad, rtol=1e-5, atol=1e-5)


def test_the_attention_module_gives_the_matmul_result_on_both_axes():
    torch.manual_seed(0)
    attn = Attention(32, 4).to(DEVICE)
    x = torch.randn(2, 4, 16, 32, device=DEVICE)
    for temporal in (True, False):
        attn.kernel = "matmul"
        want = attn(x, temporal)
        attn.kernel = "triton"
        torch.testing.assert_close(attn(x, temporal), want, rtol=1e-5, atol=1e-5)


def _compiled_grads(kernel: str) -> list[torch.Tensor]:
    cfg, clip = ModelConfig(name="Latte-T/2", depth=2, hidden=32, heads=4, patch=2), ClipShape(4, 64)
    torch.manual_seed(0)
    model = Latte(cfg, clip).to(DEVICE)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    apply(model, SpeedOptions(compile="blocks", residual="fp32", temporal_attention=kernel), DEVICE)
    g = torch.Generator(device=DEVICE).manual_seed(1)
    x = torch.randn(2, 4, 4, 8, 8, device=DEVICE, generator=g)
    out, _ = model(x, torch.tensor([5, 600], device=DEVICE))
    out.square().mean().backward()
    return [out.detach()] + [p.grad for p in model.parameters() if p.grad is not None]


def test_compiled_model_calls_the_kernel_and_matches_the_compiled_matmul_model(monkeypatch):
    calls = []

    class Spy:  # counts the kernel's launches, then launches it
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            calls.append(grid)
            return self.kernel[grid]

    monkeypatch.setattr(sa, "_forward", Spy(sa._forward))
    monkeypatch.setattr(sa, "_backward", Spy(sa._backward))
    want = _compiled_grads("matmul")
    assert not calls
    got = _compiled_grads("triton")
    assert len(calls) == 2  # one temporal block: its forward and its backward
    # The same compiler on both sides, so only the attention differs (compiled vs eager differ by more).
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 runs on a GPU (the interpreter mishandles it)")
def test_bf16_on_the_gpu_stays_within_bf16_rounding_of_float64():
    qkv = torch.randn(64, 16, 3, 16, 72, dtype=torch.float64, device="cuda")
    mine, ref = qkv.bfloat16().requires_grad_(), qkv.clone().requires_grad_()
    out, want = sa.short_attention(mine, 72 ** -0.5), reference(ref, 72 ** -0.5)
    g = torch.randn_like(want)
    (out.double() * g).sum().backward()
    (want * g).sum().backward()
    for a, b in ((out.double(), want), (mine.grad.double(), ref.grad)):
        assert ((a - b).norm() / b.norm()).item() < 2e-2


def test_sequences_past_the_register_budget_are_refused():
    with pytest.raises(ValueError, match="at most 64"):
        sa.short_attention(torch.randn(1, 65, 3, 1, 16, device=DEVICE), 0.25)


def test_without_a_gpu_or_triton_the_option_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sa, "usable", lambda device: False)
    argv = ["--run-dir", str(tmp_path), "--model", "Latte-S/2", "--depth", "2", "--hidden", "48", "--heads", "4",
            "--frames", "4", "--image-size", "64", "--steps", "2", "--parallel", "single",
            "--temporal-attention", "triton"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: --temporal-attention triton needs a CUDA GPU and the triton package"


@pytest.mark.parametrize("head_dim", [64, 72])  # L/2's and XL/2's heads (72: padded to 128 lanes, masked)
def test_the_probe_passes_the_kernel_where_it_computes_the_matmuls_result(head_dim):
    dtype = torch.float32 if DEVICE.type == "cpu" else torch.bfloat16
    assert sa._probe(DEVICE, dtype, head_dim) is None
    with torch.inference_mode():  # a caller's inference mode does not make the backward fail
        assert sa._probe(DEVICE, dtype, head_dim) is None


def test_the_probe_refuses_a_kernel_that_fails_or_computes_something_else(monkeypatch):
    real = sa.short_attention
    monkeypatch.setattr(sa, "short_attention", lambda qkv, scale: real(qkv, scale) * 1.1)
    assert "output differs from the matmuls" in sa._probe(DEVICE, torch.float32)

    def broken(qkv, scale):
        raise RuntimeError("PTX for sm_120 not supported\nmore")

    monkeypatch.setattr(sa, "short_attention", broken)
    why = sa._probe(DEVICE, torch.float32)
    assert why.startswith("the Triton kernel failed on") and why.endswith("RuntimeError: PTX for sm_120 not supported")
