"""A small diffusion MLP head (MAR, Li et al. 2024; DiT-style adaLN blocks) for continuous
tokens and action chunks: trained with a 1000-step noise schedule, sampled with DDIM.

The head denoises one vector x (a soft token, or a flattened action chunk) conditioned on z,
the trunk's output at that position:  eps = head(x_t, t, z).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def cosine_alphas_cumprod(n: int = 1000, s: float = 0.008) -> torch.Tensor:
    """alpha_bar_t for t = 0..n-1 (Nichol & Dhariwal cosine schedule), clipped away from 0 and 1."""
    t = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    ab = (f[1:] / f[0]).clamp(1e-5, 0.9999)
    return ab.float()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([a.cos(), a.sin()], dim=-1)


class AdaLNBlock(nn.Module):
    """Residual MLP block whose LayerNorm shift/scale/gate come from the condition (adaLN-Zero)."""

    def __init__(self, w: int):
        super().__init__()
        self.norm = nn.LayerNorm(w, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(w, 3 * w))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x, c):
        shift, scale, gate = self.ada(c).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class DiffusionHead(nn.Module):
    """eps-prediction MLP over vectors of `dim`, conditioned on trunk features of `cond_dim`."""

    def __init__(self, dim: int, cond_dim: int, width: int = 256, depth: int = 3, train_steps: int = 1000):
        super().__init__()
        self.dim, self.width, self.train_steps = dim, width, train_steps
        self.inp = nn.Linear(dim, width)
        self.t_emb = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.c_emb = nn.Linear(cond_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(train_steps), persistent=False)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x_t (N, dim), t (N,) integer timesteps, z (N, cond_dim) -> predicted noise (N, dim)."""
        c = self.t_emb(timestep_embedding(t, self.width)) + self.c_emb(z)
        h = self.inp(x_t)
        for blk in self.blocks:
            h = blk(h, c)
        return self.out(self.norm(h))

    def loss(self, x0: torch.Tensor, z: torch.Tensor, gen: torch.Generator | None = None,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Denoising loss: x0 (N, dim) targets, z (N, cond_dim) conditions; with `weight` (N,), the
        weighted mean over the N samples (as the discrete tokens' weighted cross-entropy)."""
        n = x0.shape[0]
        t = torch.randint(0, self.train_steps, (n,), generator=gen, device=x0.device)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        ab = self.alphas_cumprod[t][:, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        if weight is None:
            return F.mse_loss(self(x_t, t, z), noise)
        per = (self(x_t, t, z) - noise).pow(2).mean(-1)
        return (per * weight).sum() / weight.sum()

    @torch.no_grad()
    def sample(self, z: torch.Tensor, steps: int = 10, clip: float | None = 3.0, temperature: float = 1.0,
               gen: torch.Generator | None = None) -> torch.Tensor:
        """DDIM (eta = 0) from pure noise in `steps` steps; x0 clipped to +-clip at every step.
        temperature scales the initial noise (0: the deterministic mean-ish sample)."""
        n = z.shape[0]
        x = torch.randn((n, self.dim), generator=gen, device=z.device) * temperature
        ts = torch.linspace(self.train_steps - 1, 0, steps, device=z.device).round().long()
        ab = self.alphas_cumprod
        for i, t in enumerate(ts):
            a_t = ab[t]
            eps = self(x, t.expand(n), z)
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
            if i + 1 < len(ts):
                a_next = ab[ts[i + 1]]
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
            else:
                x = x0
        return x
