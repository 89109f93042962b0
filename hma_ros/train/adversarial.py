"""An adversarial loss for the tokenizer's decoder (`hma train-tokenizer --adv-weight W`).

An L1/MSE decoder fed codes that stand for several outcomes -- a world model's imagined tokens of a
pushed block -- learns their mean and draws a blur (session 23: the reacher's arm became a
smudge). A discriminator that tells real frames from decoded ones makes the decoder commit to one
sharp outcome instead, as VQGAN's does (Esser et al. 2021): a PatchGAN (pix2pix) whose 8x8 logits
at 64 px each see a 38-px patch -- about a PushT T -- through convolutions (GroupNorm's statistics
are the frame's: on version 8's imagined PushT frames against real ones it learnt 4x faster than
the same stack without norms or with spectral norms instead, which barely moved off a blind
discriminator's loss in 200 steps), trained with the hinge loss, and the
decoder's adversarial term weighed against its pixel loss by the ratio of their gradients at the
decoder's last layer (VQGAN's adaptive weight), so `--adv-weight` means the same at any loss scale.
The discriminator is training-only: checkpoints hold the tokenizer alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """Frames in [-1, 1] (B, 3, H, W) -> real/fake logits (B, 1, H/8, W/8), each from a 38-px patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        c_prev = 3
        for i, c in enumerate(channels):
            layers.append(nn.Conv2d(c_prev, c, 4, stride=2, padding=1))
            if i > 0:  # no norm on the first layer (pix2pix)
                layers.append(nn.GroupNorm(8, c))
            layers.append(nn.LeakyReLU(0.2))
            c_prev = c
        layers.append(nn.Conv2d(c_prev, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss: 2 for a discriminator that knows nothing (all logits 0), 0 once every real patch
    scores >= 1 and every decoded one <= -1."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The decoder's adversarial term: decoded patches should score as real."""
    return -fake_logits.mean()


def adaptive_weight(pixel_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor,
                    cap: float = 1e4) -> torch.Tensor:
    """VQGAN's balance: |d pixel / d W| / |d adv / d W| at the decoder's last layer's weight W,
    detached and capped, so the adversarial term moves that layer as hard as the pixel loss does."""
    g_pix = torch.autograd.grad(pixel_loss, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)[0]
    return (g_pix.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, cap).detach()
