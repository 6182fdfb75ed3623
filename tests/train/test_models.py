"""The Latte model: shapes, adaLN-Zero start, factorised attention, and the MoE dispatch against a plain loop."""

import pytest
import torch
from einops import rearrange

from xdimo.train.models import ATTENTION_KERNELS, Attention, Block, Latte, Mlp, sincos_2d
from xdimo.train.moe import MoeMlp
from xdimo.train.registry import ClipShape, ModelConfig

TINY = ModelConfig(name="Latte-T/2", depth=2, hidden=32, heads=4, patch=2)
CLIP = ClipShape(frames=4, image_size=64)  # latents 8x8, 16 tokens per frame


def _model(cfg=TINY, **kw):
    torch.manual_seed(0)
    return Latte(cfg, CLIP, **kw)


def test_output_shape_and_zero_start():
    model = _model()
    x = torch.randn(2, 4, 4, 8, 8)
    out, moe = model(x, torch.tensor([1, 500]))
    assert out.shape == (2, 4, 8, 8, 8) and moe is None
    # adaLN-Zero: the final layer starts at zero, so the first prediction is exactly zero.
    assert torch.count_nonzero(out) == 0


def _randomise(module, std=0.2):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.normal_(0, std)


@pytest.mark.parametrize("temporal", [False, True])
def test_block_attends_along_one_axis_only(temporal):
    block = Block(TINY, temporal=temporal)
    _randomise(block)
    x = torch.randn(1, 4, 16, 32)
    c = torch.randn(1, 32)
    y0, _ = block(x, c)
    x2 = x.clone()
    x2[0, 0, 0] += torch.randn(32)  # frame 0, position 0 (not a constant: LayerNorm would remove it)
    y1, _ = block(x2, c)
    changed = (y1 - y0).abs().amax(-1)[0] > 1e-6  # (F, S)
    if temporal:  # only position 0, in every frame
        assert changed[:, 0].all() and not changed[:, 1:].any()
    else:  # only frame 0, at every position
        assert changed[0].all() and not changed[1:].any()


@pytest.mark.parametrize("kernel", [k for k in ATTENTION_KERNELS if k != "triton"])  # triton: its own file
@pytest.mark.parametrize("temporal", [False, True])
def test_attention_matches_latte_rearrange_reference(temporal, kernel):
    attn = Attention(32, 4)
    attn.kernel = kernel
    x = torch.randn(2, 4, 16, 32)
    got = attn(x, temporal)
    # Latte's formulation: rearrange into (groups, seq, d), plain softmax attention, rearrange back.
    pattern = "b f s d -> (b s) f d" if temporal else "b f s d -> (b f) s d"
    seq = rearrange(x, pattern)
    q, k, v = rearrange(attn.qkv(seq), "n l (three h e) -> three n h l e", three=3, h=4)
    w = torch.softmax(q @ k.transpose(-1, -2) / (8 ** 0.5), dim=-1)
    o = attn.proj(rearrange(w @ v, "n h l e -> n l (h e)"))
    back = "(b s) f d -> b f s d" if temporal else "(b f) s d -> b f s d"
    want = rearrange(o, back, b=2, s=16) if temporal else rearrange(o, back, b=2, f=4)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_pos_embed_is_dit_sincos():
    table = sincos_2d(8, 2)  # 4 positions, row-major; first half encodes the column, second the row
    assert table.shape == (4, 8)
    torch.testing.assert_close(table[1, :4], torch.tensor([0.8414710, 0.0099998, 0.5403023, 0.99995]),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(table[1, 4:], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_frozen_tables_do_not_train():
    model = _model()
    assert not model.pos_embed.requires_grad and not model.temp_embed.requires_grad
    assert model.pos_embed.abs().sum() > 0


def _moe_reference(moe: MoeMlp, x: torch.Tensor) -> torch.Tensor:
    """Token-by-token MoE: what the vectorised dispatch must equal."""
    x = x.reshape(-1, x.shape[-1])
    probs = torch.softmax(moe.router(x).float(), -1)
    top_p, top_e = probs.topk(moe.top_k, -1)
    gates = top_p / top_p.sum(-1, keepdim=True) if moe.top_k > 1 else top_p
    cap = moe.capacity(x.shape[0])
    used = [0] * moe.experts
    y = torch.zeros_like(x)
    for j in range(moe.top_k):  # first choices have priority over second choices
        for i in range(x.shape[0]):
            e = int(top_e[i, j])
            used[e] += 1
            if cap is not None and used[e] > cap:
                continue
            h = torch.nn.functional.gelu(x[i] @ moe.w1[e] + moe.b1[e], approximate="tanh")
            y[i] += gates[i, j] * (h @ moe.w2[e] + moe.b2[e])
    return y


@pytest.mark.parametrize(("experts", "k", "cf"), [(4, 2, None), (2, 1, None), (4, 2, 0.75), (8, 2, 1.0)])
def test_moe_dispatch_matches_token_loop(experts, k, cf):
    torch.manual_seed(0)
    moe = MoeMlp(16, 32, experts, k, capacity_factor=cf)
    with torch.no_grad():
        moe.router.weight.normal_(0, 1.0)  # decisive routing, uneven loads
    x = torch.randn(2, 3, 10, 16)
    y, stats = moe(x)
    torch.testing.assert_close(y.reshape(-1, 16), _moe_reference(moe, x), rtol=1e-4, atol=1e-5)
    assert y.shape == x.shape and stats.shape == (3,)
    if cf is None:
        assert stats[2] == 0


def test_moe_counts_dropped_tokens():
    moe = MoeMlp(8, 16, 4, 1, capacity_factor=1.0)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 10.0  # every token with x[:, 0] > 0 goes to expert 0
    x = torch.randn(40, 8)
    x[:, 0] = x[:, 0].abs() + 1
    _, stats = moe(x)
    # capacity = 1.0 * 40 * 1 / 4 = 10 of the 40 assignments fit; 30 are dropped.
    assert stats[2].item() == pytest.approx(0.75)
    assert stats[1].item() == pytest.approx(4.0)  # all load on one of 4 experts


def test_moe_aux_loss_is_one_for_a_uniform_router():
    moe = MoeMlp(8, 16, 4, 2)
    with torch.no_grad():
        moe.router.weight.zero_()
    _, stats = moe(torch.randn(64, 8))
    assert stats[0].item() == pytest.approx(1.0)


def test_moe_aux_loss_trains_the_router():
    moe = MoeMlp(8, 16, 4, 2)
    _, stats = moe(torch.randn(64, 8))
    stats[0].backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_single_expert_moe_is_the_dense_mlp():
    moe = MoeMlp(16, 64, 1, 1)
    mlp = Mlp(16, 64)
    with torch.no_grad():
        mlp.fc1.weight.copy_(moe.w1[0].t())
        mlp.fc1.bias.copy_(moe.b1[0])
        mlp.fc2.weight.copy_(moe.w2[0].t())
        mlp.fc2.bias.copy_(moe.b2[0])
    x = torch.randn(5, 7, 16)
    y, _ = moe(x)
    torch.testing.assert_close(y, mlp(x), rtol=1e-5, atol=1e-6)


def test_moe_model_trains_end_to_end_and_reports_stats():
    cfg = ModelConfig(name="Latte-T/2", depth=2, hidden=32, heads=4, patch=2, experts=4, active=2)
    model = _model(cfg)
    _randomise(model)
    out, moe = model(torch.randn(2, 4, 4, 8, 8), torch.tensor([3, 900]))
    (out.square().mean() + moe[0]).backward()
    expert_grads = [b.mlp.w1.grad for b in model.blocks]
    assert all(g is not None and g.abs().sum() > 0 for g in expert_grads)


def test_recomputed_blocks_give_the_same_gradients():
    model = _model()
    _randomise(model)
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([3, 900])
    model(x, t)[0].square().mean().backward()
    plain = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    model.recompute = {0, 1}
    model(x, t)[0].square().mean().backward()
    again = [p.grad for p in model.parameters() if p.requires_grad]
    for a, b in zip(plain, again, strict=True):
        torch.testing.assert_close(a, b)


