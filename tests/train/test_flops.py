"""Analytic training FLOPs against the reference table (workload-facts.md); the meta-device check against
FlopCounterMode lives in test_flop_counter.py."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdimo.train.flops import forward_macs, tokens_per_sample, train_flops_per_sample
from xdimo.train.registry import ClipShape, get_model


@pytest.mark.parametrize(
    ("name", "moe", "tflop"),
    [
        ("Latte-S/2", None, 0.562),
        ("Latte-B/2", None, 2.185),
        ("Latte-L/2", None, 7.711),
        ("Latte-XL/2", None, 11.358),
        ("Latte-S/2", "4E2A", 0.910),
        ("Latte-L/2", "4E2A", 12.661),
        ("Latte-XL/2", "4E2A", 18.667),
    ],
)
def test_train_flops_match_reference_table(name, moe, tflop):
    assert round(train_flops_per_sample(get_model(name, moe)) / 1e12, 3) == tflop


def test_tokens_per_sample():
    assert tokens_per_sample(get_model("Latte-L/2")) == 4096
    assert tokens_per_sample(get_model("Latte-L/4")) == 1024
    assert tokens_per_sample(get_model("Latte-T/2"), ClipShape(4, 64)) == 64


def test_inactive_experts_cost_nothing():
    # 4E2A and 8E2A differ only by the router's width.
    a = forward_macs(get_model("Latte-L/2", "4E2A"))
    b = forward_macs(get_model("Latte-L/2", "8E2A"))
    assert b.dense - a.dense == 4096 * 24 * 1024 * 4


def test_attention_is_factorised():
    # Full 4096-token attention would cost T*T*d per matmul; factorised costs T*(S or F)*d.
    macs = forward_macs(get_model("Latte-L/2"))
    assert macs.attention == 4096 * 2 * 1024 * (12 * 256 + 12 * 16)


@given(frames=st.integers(1, 32), side=st.sampled_from([64, 128, 256]), k=st.integers(1, 4))
def test_flops_scale_with_active_experts(frames, side, k):
    clip = ClipShape(frames, side)
    dense = train_flops_per_sample(get_model("Latte-S/2"), clip)
    moe = train_flops_per_sample(get_model("Latte-S/2", f"4E{k}A"), clip)
    tokens = clip.tokens(2)
    expert = 2 * 384 * 1536
    assert moe - dense == 3 * 2 * tokens * 12 * ((k - 1) * expert + 384 * 4)
