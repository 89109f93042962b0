"""Image tokenizers trained by the project (no downloadable weights exist here).

`FSQTokenizer` (discrete): conv encoder -> (grid x grid) latents -> finite scalar quantization
(Mentzer et al. 2023) with `levels` per channel -> conv decoder. A token is a vector of
len(levels) small integers; the dynamics model predicts each factor with its own softmax, so a
large implicit codebook (prod(levels)) costs only sum(levels) output logits.

Frames are uint8 (B, H, W, 3) at the boundary, floats in [-1, 1] (B, 3, H, W) inside.
Default 64x64 -> 8x8; the paper's 256x256 -> 16x16 is `resolution=256, grid=16`.

`encoder="local"` runs the encoder on each token's patch alone (`PatchLocal`, no normalization): a
token's code is then a function of its own (resolution/grid)-px patch, so a token whose patch did
not change keeps its code exactly, whatever moved elsewhere. The "conv" encoder's GroupNorm and
~80 px receptive field flip 14-38% of such tokens between consecutive frames (docs/architecture.md,
"The token code is not local"), and the dynamics model must predict flips the scene did not make.
The decoder is the same for both: drawing a patch may use its neighbours' tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TokenizerConfig:
    kind: str = "fsq"  # "fsq" (discrete, MaskGIT) | "continuous" (soft tokens, MAR)
    resolution: int = 64
    grid: int = 8
    channels: tuple[int, ...] = (48, 96, 192)
    levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    res_blocks: int = 1
    latent_dim: int = 8  # continuous: channels per soft token
    latent_scale: float = 1.0  # continuous: multiplies latents so they have ~unit std (set after training)
    # "conv": one conv stack over the whole frame, GroupNorm in every block (a token sees ~80 px and
    # the frame's statistics); "local": the same stack run on each (resolution/grid)-px patch alone,
    # no normalization, so a token's code is a function of its own patch's pixels and nothing else
    encoder: str = "conv"

    def __post_init__(self):
        self.channels = tuple(self.channels)
        self.levels = tuple(self.levels)
        if self.kind not in ("fsq", "continuous"):
            raise ValueError(f"tokenizer kind must be 'fsq' or 'continuous', got {self.kind!r}")
        if self.encoder not in ("conv", "local"):
            raise ValueError(f"tokenizer encoder must be 'conv' or 'local', got {self.encoder!r}")
        down = self.resolution // self.grid
        if self.resolution % self.grid or down & (down - 1):
            raise ValueError(f"resolution/grid must be a power of two, got {self.resolution}/{self.grid}")
        if 2 ** (len(self.channels)) != down and len(self.channels) != int(math.log2(down)):
            raise ValueError(f"need log2({down}) = {int(math.log2(down))} channel stages, got {len(self.channels)}")

    @property
    def token_dim(self) -> int:
        """Values per token: FSQ factors, or latent channels."""
        return len(self.levels) if self.kind == "fsq" else self.latent_dim

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


def _norm(c: int, norm: bool) -> nn.Module:
    # Identity keeps the Sequential's indices, so a "local" encoder loads a "conv" one's conv weights
    return nn.GroupNorm(8, c) if norm else nn.Identity()


class ResBlock(nn.Module):
    def __init__(self, c: int, norm: bool = True):
        super().__init__()
        self.body = nn.Sequential(_norm(c, norm), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
                                  _norm(c, norm), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

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


class PatchLocal(nn.Sequential):
    """The encoder stack run on each (patch x patch) block of the frame alone: the blocks are folded
    into the batch, so zero padding stands at every patch border and no activation crosses one. The
    same FLOPs as the stack over the whole frame; the code of a token depends on its patch only."""

    def __init__(self, patch: int, *layers: nn.Module):
        super().__init__(*layers)
        self.patch = patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, k, H/patch, W/patch)
        b, c, h, w = x.shape
        p = self.patch
        gh, gw = h // p, w // p
        patches = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b * gh * gw, c, p, p)
        z = super().forward(patches)  # (B*gh*gw, k, 1, 1)
        return z.reshape(b, gh, gw, -1).permute(0, 3, 1, 2)


def conv_stacks(cfg: TokenizerConfig, k: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder (3 -> k channels at grid x grid) and decoder (k -> 3) of the tokenizers."""
    norm = cfg.encoder == "conv"
    enc: list[nn.Module] = [nn.Conv2d(3, cfg.channels[0], 3, padding=1)]
    c_prev = cfg.channels[0]
    for c in cfg.channels:
        enc += [nn.Conv2d(c_prev, c, 4, stride=2, padding=1)]
        enc += [ResBlock(c, norm) for _ in range(cfg.res_blocks)]
        c_prev = c
    enc += [_norm(c_prev, norm), nn.SiLU(), nn.Conv2d(c_prev, k, 1)]
    dec: list[nn.Module] = [nn.Conv2d(k, c_prev, 3, padding=1)]
    for c in reversed(cfg.channels):
        dec += [ResBlock(c_prev) for _ in range(cfg.res_blocks)]
        dec += [nn.ConvTranspose2d(c_prev, c, 4, stride=2, padding=1)]
        c_prev = c
    dec += [nn.GroupNorm(8, c_prev), nn.SiLU(), nn.Conv2d(c_prev, 3, 3, padding=1)]
    encoder = PatchLocal(cfg.resolution // cfg.grid, *enc) if cfg.encoder == "local" else nn.Sequential(*enc)
    return encoder, nn.Sequential(*dec)


class FSQTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = conv_stacks(cfg, len(cfg.levels))
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
        return to_uint8(self.decode_float(codes).clamp(-1, 1))

    def decode_float(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, grid*grid, K) -> the decoder's output (B, 3, H, W), unclamped (what a
        decoder trains on)."""
        g = self.cfg.grid
        q = self.fsq.codes_to_values(codes).view(codes.shape[0], g, g, -1).movedim(-1, 1)
        return self.decoder(q)

    def soft_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Frames as floats (B, 3, H, W) -> the bounded latent before rounding (B, g, g, K), in
        level units: a code's distance where a change of 1 is one FSQ level."""
        return self.fsq.bound(self.encoder(x).movedim(1, -1).float())  # rounded in fp32 under bf16 autocast too

    def forward(self, frames_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction in [-1, 1] (B, 3, H, W), target (B, 3, H, W)); the soft
        latent is kept as `last_soft` (for `shift_penalty`)."""
        x = to_float(frames_u8)
        b = self.last_soft = self.soft_latent(x)
        q = b + (b.round() - b).detach()  # FSQ's straight-through rounding
        return self.decoder(q.movedim(-1, 1)), x


class ContinuousTokenizer(nn.Module):
    """Conv autoencoder with `latent_dim` real channels per token ("soft tokens", MAR). Latents
    are noised a little in training so the decoder tolerates the diffusion head's errors;
    `latent_scale` (measured after training) brings them to ~unit std for the diffusion head."""

    def __init__(self, cfg: TokenizerConfig, train_noise: float = 0.1):
        super().__init__()
        self.cfg = cfg
        self.train_noise = train_noise
        self.encoder, self.decoder = conv_stacks(cfg, cfg.latent_dim)

    @property
    def tokens_per_frame(self) -> int:
        return self.cfg.grid**2

    def encode(self, frames_u8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> soft tokens (B, grid*grid, latent_dim) float, scaled."""
        z = self.encoder(to_float(frames_u8))  # (B, C, g, g)
        return z.movedim(1, -1).flatten(1, 2) * self.cfg.latent_scale

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, grid*grid, latent_dim) -> (B, H, W, 3) uint8."""
        return to_uint8(self.decode_float(tokens).clamp(-1, 1))

    def decode_float(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, grid*grid, latent_dim) -> the decoder's output (B, 3, H, W), unclamped."""
        g = self.cfg.grid
        z = (tokens.float() / self.cfg.latent_scale).reshape(tokens.shape[0], g, g, -1).movedim(-1, 1)
        return self.decoder(z)

    def soft_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Frames as floats (B, 3, H, W) -> latents (B, g, g, D), scaled as encode() gives them."""
        return self.encoder(x).movedim(1, -1).float() * self.cfg.latent_scale  # fp32 under bf16 autocast too

    def forward(self, frames_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_float(frames_u8)
        z = self.encoder(x)
        self.last_soft = z.movedim(1, -1).float() * self.cfg.latent_scale
        self.last_latent_penalty = 1e-3 * z.float().pow(2).mean()  # keeps the latent scale bounded
        if self.training and self.train_noise > 0:
            z = z + self.train_noise * z.detach().std() * torch.randn_like(z)
        return self.decoder(z), x


def shift_frames(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Float frames (B, 3, H, W) moved by (dx, dy) pixels (right, down), edges replicated."""
    p = max(abs(dx), abs(dy))
    if p == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (p, p, p, p), mode="replicate")
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]


def shift_penalty(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """How far a one-pixel move of the frames moves their code: the mean absolute change of the
    soft latent (`soft_latent`, FSQ level units) when x (B, 3, H, W) moves by one pixel in a
    random direction, against `model.last_soft` (x's own, kept by the training pass). An L1
    penalty: it prefers the move to change few factors by little -- a code in which a nearby pose
    has a nearby code, so a dynamics model that is a factor level off draws the object a pixel off
    instead of a different patch (`hma train-tokenizer --shift-weight`)."""
    d = torch.randint(0, 8, (1,), generator=gen).item()
    dx, dy = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)][d]
    return (model.soft_latent(shift_frames(x, dx, dy)) - model.last_soft).abs().mean()


def build_tokenizer(cfg: TokenizerConfig) -> nn.Module:
    return FSQTokenizer(cfg) if cfg.kind == "fsq" else ContinuousTokenizer(cfg)


def psnr(a_u8: torch.Tensor, b_u8: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of uint8 images (B, ..., H, W, 3)."""
    mse = (a_u8.float() - b_u8.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def tokenizer_pixel_loss(recon: torch.Tensor, target: torch.Tensor, moving: torch.Tensor | None = None,
                         motion_weight: float = 0.0) -> torch.Tensor:
    """The tokenizer's loss at every pixel and channel (B, C, H, W): L1 + MSE, weighted up where
    the frame is not background (sparse scenes like PushT) and, with `moving` (B, H, W) bool
    (pixels that changed since the episode's previous frame, `metrics.moving_pixels`, dilated by
    one pixel), `motion_weight` more there: what moves is what the actions move (PushT's agent is
    ~14 of 4,096 pixels at 64x64)."""
    l1 = (recon - target).abs()
    # pixels far from the frame's median colour get 4x weight: small objects matter
    med = target.flatten(2).median(dim=2).values[..., None, None]
    weight = 1.0 + 3.0 * ((target - med).abs().amax(1, keepdim=True) > 0.1).float()
    if moving is not None and motion_weight > 0:
        m = F.max_pool2d(moving[:, None].float(), 3, stride=1, padding=1)  # dilate: the disc's rim too
        weight = weight + motion_weight * m
    return weight * (l1 + F.mse_loss(recon, target, reduction="none"))


def tokenizer_loss(recon: torch.Tensor, target: torch.Tensor, moving: torch.Tensor | None = None,
                   motion_weight: float = 0.0) -> torch.Tensor:
    """The training loss: `tokenizer_pixel_loss` averaged over the batch."""
    return tokenizer_pixel_loss(recon, target, moving, motion_weight).mean()


def worst_patch_loss(recon: torch.Tensor, target: torch.Tensor, patch: int, moving: torch.Tensor | None = None,
                     motion_weight: float = 0.0) -> torch.Tensor:
    """Per frame (B,): the loss of its worst-drawn token patch (`tokenizer_pixel_loss` averaged over
    each patch x patch cell, the largest). A frame whose one small object is lost -- an agent
    dropped where it touches the block, a disc half out of the frame -- scores high here while
    its frame mean barely moves: what hard-frame mining (`hma train-tokenizer --hard-share`) ranks by."""
    per_pixel = tokenizer_pixel_loss(recon, target, moving, motion_weight).mean(1, keepdim=True)
    return F.avg_pool2d(per_pixel, patch).flatten(1).amax(1)


