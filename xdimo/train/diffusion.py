"""Gaussian diffusion as DiT/Latte train it: 1000 linear-beta steps, epsilon prediction, learned-range
variance, loss = MSE(eps) + VLB (the variational bound term trains only the variance, through a frozen mean),
and a DDPM sampler over respaced steps (e.g. 250 of the 1000).

Video tensors are (B, F, C, H, W); the model's output doubles C: the noise, then the variance interpolation
``v`` in [-1, 1] between log(beta_t) and the clipped log posterior variance. The schedule is computed in
float64 (as DiT's numpy code) and read at each step as float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

CHANNEL_DIM = 2  # (B, F, C, H, W)


def linear_betas(steps: int = 1000) -> torch.Tensor:
    scale = 1000 / steps  # DiT's linear schedule, scaled so any step count spans the same noise range
    return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)


def space_timesteps(steps: int, count: int) -> list[int]:
    """``count`` evenly spaced steps of ``steps``, first and last included (DiT's ``space_timesteps``)."""
    if count > steps or count < 1:
        raise ValueError(f"cannot take {count} of {steps} steps")
    if count == 1:
        return [0]
    stride = (steps - 1) / (count - 1)
    return [round(i * stride) for i in range(count)]


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(1, x.dim())))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x, means, log_scales) -> torch.Tensor:
    """Log-likelihood of data in [-1, 1] quantised to 256 bins (DiT's decoder term at t = 0)."""
    centred = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_std * (centred + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_std * (centred - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


class GaussianDiffusion:
    """The schedule and the maths over it; ``timestep_map`` maps respaced steps to the model's steps."""

    def __init__(self, betas: torch.Tensor, timestep_map: list[int] | None = None):
        self.betas = betas.double()
        self.num_timesteps = len(betas)
        self.timestep_map = torch.tensor(timestep_map or list(range(self.num_timesteps)))
        alphas = 1.0 - self.betas
        acp = torch.cumprod(alphas, 0)
        acp_prev = torch.cat([torch.ones(1, dtype=torch.float64), acp[:-1]])
        self.alphas_cumprod = acp
        self.sqrt_acp = acp.sqrt()
        self.sqrt_one_minus_acp = (1.0 - acp).sqrt()
        self.sqrt_recip_acp = (1.0 / acp).sqrt()
        self.sqrt_recipm1_acp = (1.0 / acp - 1).sqrt()
        self.posterior_variance = self.betas * (1.0 - acp_prev) / (1.0 - acp)
        # The posterior variance is 0 at t = 0: clip the log to its t = 1 value.
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_mean_coef1 = self.betas * acp_prev.sqrt() / (1.0 - acp)
        self.posterior_mean_coef2 = (1.0 - acp_prev) * alphas.sqrt() / (1.0 - acp)
        self._on: dict[tuple[str, torch.device], torch.Tensor] = {}

    def _at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule ``name`` at steps ``t`` as float32, shaped to broadcast over ``like``."""
        key = (name, t.device)
        if key not in self._on:  # one host-to-device copy per table, not one per step
            self._on[key] = getattr(self, name).to(t.device)
        return self._on[key][t].float().view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self._at("sqrt_acp", t, x0) * x0 + self._at("sqrt_one_minus_acp", t, x0) * noise

    def q_posterior(self, x0, xt, t) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self._at("posterior_mean_coef1", t, xt) * x0 + self._at("posterior_mean_coef2", t, xt) * xt
        return mean, self._at("posterior_log_variance_clipped", t, xt)

    def p_mean_variance(self, output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                        clip_denoised: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model mean, log variance and predicted x0 from the raw output (eps, v)."""
        eps, v = output.chunk(2, dim=CHANNEL_DIM)
        min_log = self._at("posterior_log_variance_clipped", t, xt)
        max_log = torch.log(self._at("betas", t, xt))
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = self._at("sqrt_recip_acp", t, xt) * xt - self._at("sqrt_recipm1_acp", t, xt) * eps
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, log_var, x0

    def training_losses(self, output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                        noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample ``loss`` = ``mse`` + ``vb`` for the model ``output`` at (xt, t); all float32."""
        output, x0, xt, noise = output.float(), x0.float(), xt.float(), noise.float()
        eps, v = output.chunk(2, dim=CHANNEL_DIM)
        # The bound trains the variance only: the mean comes from a detached eps.
        frozen = torch.cat([eps.detach(), v], dim=CHANNEL_DIM)
        mean, log_var, _ = self.p_mean_variance(frozen, xt, t)
        true_mean, true_log_var = self.q_posterior(x0, xt, t)
        kl = mean_flat(normal_kl(true_mean, true_log_var, mean, log_var)) / math.log(2.0)
        nll = -mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        mse = mean_flat((noise - eps) ** 2)
        return {"loss": mse + vb, "mse": mse, "vb": vb}

    def p_sample_loop(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      shape: tuple[int, ...], generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", clip_denoised: bool = False) -> torch.Tensor:
        """DDPM ancestral sampling from pure noise; ``denoise(x, t)`` gets the model's own step numbers."""
        x = torch.randn(shape, generator=generator, device=device)
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((shape[0],), i, device=device, dtype=torch.long)
            out = denoise(x, self.timestep_map.to(device)[t])
            mean, log_var, _ = self.p_mean_variance(out.float(), x, t, clip_denoised)
            noise = torch.randn(shape, generator=generator, device=device) if i > 0 else torch.zeros_like(x)
            x = mean + torch.exp(0.5 * log_var) * noise
        return x


def create_diffusion(sampling_steps: int | None = None, steps: int = 1000) -> GaussianDiffusion:
    """The training diffusion (``sampling_steps=None``) or a respaced one for sampling (e.g. 250)."""
    betas = linear_betas(steps)
    if sampling_steps is None or sampling_steps == steps:
        return GaussianDiffusion(betas)
    use = space_timesteps(steps, sampling_steps)
    acp = torch.cumprod(1.0 - betas, 0)
    new_betas, last = [], 1.0
    for i in use:  # keep the cumulative products at the kept steps, re-derive the betas between them
        new_betas.append(1 - acp[i].item() / last)
        last = acp[i].item()
    return GaussianDiffusion(torch.tensor(new_betas, dtype=torch.float64), timestep_map=use)
