"""Registry names and analytic parameter counts against the reference figures (workload-facts.md)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdimo.train.registry import ClipShape, check_shape, get_model, model_names, param_counts


@pytest.mark.parametrize(
    ("name", "moe", "total"),
    [
        ("Latte-S/2", None, 32_585_120),
        ("Latte-S/2", "4E2A", 75_140_000),
        ("Latte-S/2", "4E1A", 75_140_000),  # total counts every expert whatever k is
        ("Latte-B/2", None, 129_755_936),
        ("Latte-L/2", None, 457_094_176),
        ("Latte-XL/2", None, 673_994_912),
    ],
)
def test_total_params_match_reference(name, moe, total):
    assert param_counts(get_model(name, moe)).total == total


def test_trainable_excludes_fixed_embeddings():
    assert param_counts(get_model("Latte-S/2")).trainable == 32_480_672


def test_dense_active_equals_total():
    counts = param_counts(get_model("Latte-L/2"))
    assert counts.active == counts.total


def test_moe_active_counts_router_and_k_experts():
    dense = param_counts(get_model("Latte-S/2")).total
    moe = param_counts(get_model("Latte-S/2", "4E2A"))
    d, depth = 384, 12
    expert = d * 4 * d + 4 * d + 4 * d * d + d
    router = d * 4
    assert moe.active == dense + depth * (expert + router)
    assert moe.total == dense + depth * (3 * expert + router)


def test_tiny_model_is_registered():
    cfg = get_model("Latte-T/2")
    assert (cfg.depth, cfg.hidden, cfg.heads, cfg.patch) == (2, 64, 4, 2)


def test_names_cover_sizes_and_patches():
    names = model_names()
    for size in ("S", "B", "L", "XL"):
        for patch in (2, 4, 8):
            assert f"Latte-{size}/{patch}" in names


@pytest.mark.parametrize("bad", ["Latte-M/2", "Latte-L/3", "latte-l/2", "Latte-T/4", ""])
def test_unknown_names_raise(bad):
    with pytest.raises(ValueError, match="unknown model"):
        get_model(bad)


@pytest.mark.parametrize("bad", ["4E", "2E4A", "0E0A", "x"])
def test_bad_moe_raises(bad):
    with pytest.raises(ValueError):
        get_model("Latte-S/2", bad)


def test_label_and_moe_string():
    assert get_model("Latte-L/2", "4E2A").label == "Latte-L/2-4E2A"
    assert get_model("Latte-L/2").label == "Latte-L/2"


def test_shape_checks():
    check_shape(get_model("Latte-L/8"), ClipShape(16, 256))
    with pytest.raises(ValueError):
        check_shape(get_model("Latte-L/8"), ClipShape(16, 200))


@given(frames=st.integers(1, 64), side=st.sampled_from([64, 128, 256, 512]))
def test_param_counts_grow_only_with_fixed_embeddings(frames, side):
    # The clip changes only the fixed sin-cos tables: trainable parameters do not depend on it.
    cfg = get_model("Latte-B/4", "2E1A")
    base = param_counts(cfg)
    other = param_counts(cfg, ClipShape(frames, side))
    assert other.trainable == base.trainable
    tables = ((side // 8 // 4) ** 2 + frames) * cfg.hidden
    assert other.total - other.trainable == tables
