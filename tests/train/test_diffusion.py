"""Diffusion maths: schedule, respacing, the MSE + VLB loss, and the sampler on a case with a known answer."""

import pytest
import torch

from xdimo.train.diffusion import create_diffusion, linear_betas, normal_kl, space_timesteps


def test_linear_betas():
    b = linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02) and len(b) == 1000


def test_space_timesteps():
    steps = space_timesteps(1000, 250)
    assert len(steps) == 250 and steps[0] == 0 and steps[-1] == 999
    assert steps == sorted(set(steps))


def test_respacing_keeps_cumulative_alphas():
    full, spaced = create_diffusion(), create_diffusion(250)
    idx = spaced.timestep_map
    torch.testing.assert_close(spaced.alphas_cumprod, full.alphas_cumprod[idx])


def test_q_sample_is_variance_preserving():
    d = create_diffusion()
    torch.manual_seed(0)
    x0, noise = torch.randn(4000, 1, 1, 1, 1), torch.randn(4000, 1, 1, 1, 1)
    t = torch.full((4000,), 500)
    xt = d.q_sample(x0, t, noise)
    assert xt.var().item() == pytest.approx(1.0, abs=0.06)


def test_loss_terms():
    d = create_diffusion()
    torch.manual_seed(0)
    x0, noise = torch.randn(3, 2, 4, 4, 4), torch.randn(3, 2, 4, 4, 4)
    t = torch.tensor([0, 10, 999])
    xt = d.q_sample(x0, t, noise)
    v = torch.zeros(3, 2, 4, 4, 4)
    perfect = torch.cat([noise, v], dim=2)
    terms = d.training_losses(perfect, x0, xt, t, noise)
    assert torch.all(terms["mse"] == 0)
    assert torch.all(terms["vb"][1:] >= 0)  # a KL divergence
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["vb"])


def test_vlb_trains_only_the_variance():
    d = create_diffusion()
    x0, noise = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 2, 4, 4, 4)
    t = torch.tensor([5, 600])
    out = torch.randn(2, 2, 8, 4, 4, requires_grad=True)
    d.training_losses(out, x0, d.q_sample(x0, t, noise), t, noise)["vb"].sum().backward()
    assert out.grad[:, :, :4].abs().sum() == 0 and out.grad[:, :, 4:].abs().sum() > 0


def test_normal_kl_of_equal_gaussians_is_zero():
    m, lv = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(normal_kl(m, lv, m, lv), torch.zeros(5))


def test_sampler_recovers_a_point_mass():
    """Data that is always the same clip c: the exact eps is (x - sqrt(acp) c) / sqrt(1 - acp)."""
    full, spaced = create_diffusion(), create_diffusion(50)
    c = torch.linspace(-0.5, 0.5, 2 * 3 * 4 * 4).reshape(1, 2, 3, 4, 4)

    def denoise(x, t):  # t is the model's (1000-step) timestep
        acp = full.alphas_cumprod.float()[t].view(-1, 1, 1, 1, 1)
        eps = (x - acp.sqrt() * c) / (1 - acp).sqrt()
        return torch.cat([eps, torch.zeros_like(eps)], dim=2)

    g = torch.Generator().manual_seed(0)
    sample = spaced.p_sample_loop(denoise, (2, 2, 3, 4, 4), generator=g)
    torch.testing.assert_close(sample, c.expand(2, -1, -1, -1, -1), atol=0.05, rtol=0)
