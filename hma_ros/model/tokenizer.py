"""Image tokenizers trained by the project (no downloadable weights exist here).

`FSQTokenizer` (discrete): conv encoder -> (grid x grid) latents -> finite scalar quantization
(Mentzer et al. 2023) with `levels` per channel -> conv decoder. A token is a vector of
len(levels) small integers; the dynamics model predicts each factor with its own softmax, so a
large implicit codebook (prod(levels)) costs only sum(levels) output logits.

Frames are uint8 (B, H, W, 3) at the boundary, floats in [-1, 1] (B, 3, H, W) inside.
Default 64x64 -> 8x8; the paper's 256x256 -> 16x16 is `resolution=256, grid=16`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TokenizerConfig:
    kind: str = "fsq"  # "fsq" (discrete) | "continuous" (planned: MAR soft tokens)
    resolution: int = 64
    grid: int = 8
    channels: tuple[int, ...] = (48, 96, 192)
    levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    res_blocks: int = 1

    def __post_init__(self):
        self.channels = tuple(self.channels)
        self.levels = tuple(self.levels)
        down = self.resolution // self.grid
        if self.resolution % self.grid or down & (down - 1):
            raise ValueError(f"resolution/grid must be a power of two, got {self.resolution}/{self.grid}")
        if 2 ** (len(self.channels)) != down and len(self.channels) != int(math.log2(down)):
            raise ValueError(f"need log2({down}) = {int(math.log2(down))} channel stages, got {len(self.channels)}")

    @property
    def codebook_size(self) -> int:
        return int(math.prod(self.levels))

    def to_dict(self) -> dict:
        return asdict(self)


def to_float(frames_u8: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [-1, 1]."""
    x = frames_u8.float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [-1, 1] -> (..., H, W, 3) uint8."""
    return x.movedim(-3, -1).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
                                  nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class FSQ(nn.Module):
    """Finite scalar quantization with a straight-through gradient."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.float32), persistent=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:  # z: (..., K) -> values in [-(L-1)/2, (L-1)/2]
        half = (self.levels - 1) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., K) -> (quantized values (..., K) with straight-through grad, codes (..., K) long)."""
        b = self.bound(z)
        q = b + (b.round() - b).detach()
        half = (self.levels - 1) // 2
        codes = (q.round() + half + torch.where(self.levels % 2 == 0, 1.0, 0.0)).long()
        codes = codes.clamp(min=torch.zeros_like(self.levels).long(), max=(self.levels - 1).long())
        return q, codes

    def codes_to_values(self, codes: torch.Tensor) -> torch.Tensor:
        half = (self.levels - 1) // 2
        return codes.float() - half - torch.where(self.levels % 2 == 0, 1.0, 0.0)


class FSQTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        k = len(cfg.levels)
        enc: list[nn.Module] = [nn.Conv2d(3, cfg.channels[0], 3, padding=1)]
        c_prev = cfg.channels[0]
        for c in cfg.channels:
            enc += [nn.Conv2d(c_prev, c, 4, stride=2, padding=1)]
            enc += [ResBlock(c) for _ in range(cfg.res_blocks)]
            c_prev = c
        enc += [nn.GroupNorm(8, c_prev), nn.SiLU(), nn.Conv2d(c_prev, k, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(k, c_prev, 3, padding=1)]
        for c in reversed(cfg.channels):
            dec += [ResBlock(c_prev) for _ in range(cfg.res_blocks)]
            dec += [nn.ConvTranspose2d(c_prev, c, 4, stride=2, padding=1)]
            c_prev = c
        dec += [nn.GroupNorm(8, c_prev), nn.SiLU(), nn.Conv2d(c_prev, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self.fsq = FSQ(cfg.levels)

    @property
    def tokens_per_frame(self) -> int:
        return self.cfg.grid**2

    def encode(self, frames_u8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> codes (B, grid*grid, K) long."""
        z = self.encoder(to_float(frames_u8))  # (B, K, g, g)
        _, codes = self.fsq(z.movedim(1, -1))
        return codes.flatten(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, grid*grid, K) -> (B, H, W, 3) uint8."""
        g = self.cfg.grid
        q = self.fsq.codes_to_values(codes).view(codes.shape[0], g, g, -1).movedim(-1, 1)
        return to_uint8(self.decoder(q).clamp(-1, 1))

    def forward(self, frames_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction in [-1, 1] (B, 3, H, W), target (B, 3, H, W))."""
        x = to_float(frames_u8)
        q, _ = self.fsq(self.encoder(x).movedim(1, -1))
        return self.decoder(q.movedim(-1, 1)), x


def psnr(a_u8: torch.Tensor, b_u8: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of uint8 images (B, ..., H, W, 3)."""
    mse = (a_u8.float() - b_u8.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def tokenizer_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 + MSE, weighted up where the frame is not background (sparse scenes like PushT)."""
    l1 = (recon - target).abs()
    # pixels far from the frame's median colour get 4x weight: small objects matter
    med = target.flatten(2).median(dim=2).values[..., None, None]
    weight = 1.0 + 3.0 * ((target - med).abs().amax(1, keepdim=True) > 0.1).float()
    return (weight * (l1 + F.mse_loss(recon, target, reduction="none"))).mean()


