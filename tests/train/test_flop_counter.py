"""Every full-size registry entry built on the meta device: parameters equal registry.py's count and
FlopCounterMode's forward + backward equals flops.py's within 1%."""

import pytest
import torch

from xdimo.train.flop_count import train_flops_measured
from xdimo.train.flops import train_flops_per_sample
from xdimo.train.models import build_model
from xdimo.train.registry import ClipShape, get_model, model_names, param_counts

ENTRIES = [(n, None) for n in model_names()] + [
    (n, moe) for n in model_names() if n.endswith("/2") for moe in ("4E2A", "2E1A")] + [("Latte-S/4", "8E2A")]


@pytest.mark.parametrize(("name", "moe"), ENTRIES)
def test_meta_model_matches_registry_and_flops(name, moe):
    cfg = get_model(name, moe)
    model = build_model(cfg, device="meta")
    assert sum(p.numel() for p in model.parameters()) == param_counts(cfg).total
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == param_counts(cfg).trainable
    measured, analytic = train_flops_measured(cfg), train_flops_per_sample(cfg)
    assert measured == pytest.approx(analytic, rel=0.01)


def test_other_clip_shapes_and_batches():
    cfg, clip = get_model("Latte-B/2", "4E2A"), ClipShape(frames=8, image_size=128)
    assert train_flops_measured(cfg, clip, batch=3) == pytest.approx(3 * train_flops_per_sample(cfg, clip),
                                                                      rel=0.01)
    model = build_model(cfg, clip, device="meta")
    assert sum(p.numel() for p in model.parameters()) == param_counts(cfg, clip).total


def test_meta_build_allocates_nothing():
    model = build_model(get_model("Latte-XL/2", "4E2A"), device="meta")
    assert all(p.device == torch.device("meta") for p in model.parameters())
