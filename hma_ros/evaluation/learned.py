"""The paper's learned image metrics (Tab. 2), from weight files the user passes by path.

- **LPIPS** (Zhang et al. 2018, "alex" variant): AlexNet features at its five ReLUs, unit-
  normalized per channel, squared differences weighted by learned 1x1 layers, spatially averaged
  and summed. Lower is closer.
- **FID** (Heusel et al. 2017): the Frechet distance between Gaussians fitted to 2048-d pool
  features of the FID Inception-v3 (the 2015 TF graph, as pytorch-fid ports it) of real and
  generated frames. Lower is closer.

Nothing downloads. Weights are safetensors files with the public checkpoints' own key names:
`lpips_alex.safetensors` (torchvision AlexNet `features.*` under `net.` + LPIPS `lin{0..4}.model.1.weight`)
and `fid_inception.safetensors` (pytorch-fid's `pt_inception-2015-12-05` state dict). Convert the
public files once with `python scripts/convert_metric_weights.py` (it reads them with
`torch.load(weights_only=True)`, which refuses code). A missing file is a clear error that names
what is expected. The architectures are tested with random weights (test_learned_metrics.py).
FVD (I3D features of whole clips) is not implemented.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MetricWeightsError(FileNotFoundError):
    """A learned metric's weight file is missing or does not fit its network."""


def load_weights(net: nn.Module, path: str | Path, expected: str, strict: bool = True) -> nn.Module:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / expected
    if not p.is_file():
        raise MetricWeightsError(
            f"{p}: no such weight file. The learned metrics need {expected} (safetensors); nothing is "
            "downloaded. Convert the public checkpoint once: python scripts/convert_metric_weights.py --help")
    from safetensors.torch import load_file

    try:
        missing, unexpected = net.load_state_dict(load_file(str(p)), strict=False)
    except RuntimeError as e:
        raise MetricWeightsError(f"{p}: weights do not fit {type(net).__name__} ({str(e)[:300]})") from None
    if strict and (missing or unexpected):
        raise MetricWeightsError(f"{p}: not {expected} (missing {missing[:4]}, unexpected {unexpected[:4]})")
    if missing:
        raise MetricWeightsError(f"{p}: not {expected} (missing {missing[:4]})")
    return net.eval()


def _to_float(frames_u8) -> torch.Tensor:  # (N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1]
    x = torch.as_tensor(np.asarray(frames_u8)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


# ---------------------------------------------------------------------------------------- LPIPS
class LPIPS(nn.Module):
    """LPIPS with the AlexNet trunk; forward(a_u8, b_u8) -> (N,) distances."""

    CHANNELS = (64, 192, 384, 256, 256)
    TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs after each conv in `features`
    WEIGHTS = "lpips_alex.safetensors"

    def __init__(self):
        super().__init__()
        self.net = nn.Module()
        self.net.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())
        for i, c in enumerate(self.CHANNELS):
            lin = nn.Module()
            lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
            self.add_module(f"lin{i}", lin)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def load(cls, path: str | Path) -> LPIPS:
        return load_weights(cls(), path, cls.WEIGHTS)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.net.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, a_u8, b_u8) -> torch.Tensor:
        fa, fb = self._taps(_to_float(a_u8)), self._taps(_to_float(b_u8))
        d = 0.0
        for i, (x, y) in enumerate(zip(fa, fb, strict=True)):
            d = d + getattr(self, f"lin{i}").model((x - y).square()).mean(dim=(2, 3))
        return d.flatten()


# ------------------------------------------------------------------------------------------ FID
class _Conv(nn.Module):  # BasicConv2d: conv (no bias) + BN (eps 1e-3) + ReLU
    def __init__(self, cin: int, cout: int, k, s=1, p=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):  # the FID graph's average pools exclude the padding
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class _A(nn.Module):
    def __init__(self, cin: int, pool: int):
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = _Conv(cin, 48, 1), _Conv(48, 64, 5, p=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2 = _Conv(cin, 64, 1), _Conv(64, 96, 3, p=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, p=1)
        self.branch_pool = _Conv(cin, pool, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg3(x))], 1)


class _B(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, s=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2 = _Conv(cin, 64, 1), _Conv(64, 96, 3, p=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, s=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, 2)], 1)


class _C(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1, self.branch7x7_2 = _Conv(cin, c7, 1), _Conv(c7, c7, (1, 7), p=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), p=(3, 0))
        self.branch7x7dbl_1, self.branch7x7dbl_2 = _Conv(cin, c7, 1), _Conv(c7, c7, (7, 1), p=(3, 0))
        self.branch7x7dbl_3, self.branch7x7dbl_4 = _Conv(c7, c7, (1, 7), p=(0, 3)), _Conv(c7, c7, (7, 1), p=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), p=(0, 3))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class _D(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = _Conv(cin, 192, 1), _Conv(192, 320, 3, s=2)
        self.branch7x7x3_1, self.branch7x7x3_2 = _Conv(cin, 192, 1), _Conv(192, 192, (1, 7), p=(0, 3))
        self.branch7x7x3_3, self.branch7x7x3_4 = _Conv(192, 192, (7, 1), p=(3, 0)), _Conv(192, 192, 3, s=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)


class _E(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # Mixed_7c pools by max in the FID graph, Mixed_7b by average
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a, self.branch3x3_2b = _Conv(384, 384, (1, 3), p=(0, 1)), _Conv(384, 384, (3, 1), p=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = _Conv(cin, 448, 1), _Conv(448, 384, 3, p=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), p=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), p=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pool)], 1)


class FIDInception(nn.Module):
    """The FID Inception-v3 up to its 2048-d average pool; forward(frames_u8) -> (N, 2048)."""

    WEIGHTS = "fid_inception.safetensors"

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3, self.Conv2d_2a_3x3 = _Conv(3, 32, 3, s=2), _Conv(32, 32, 3)
        self.Conv2d_2b_3x3, self.Conv2d_3b_1x1 = _Conv(32, 64, 3, p=1), _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _A(192, 32), _A(256, 64), _A(288, 64)
        self.Mixed_6a = _B(288)
        self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = _C(768, 128), _C(768, 160), _C(768, 160), _C(768, 192)
        self.Mixed_7a = _D(768)
        self.Mixed_7b, self.Mixed_7c = _E(1280, max_pool=False), _E(2048, max_pool=True)

    @classmethod
    def load(cls, path: str | Path) -> FIDInception:
        net = cls()
        net.fc = nn.Linear(2048, 1008)  # in the public file; unused (features come before it)
        return load_weights(net, path, cls.WEIGHTS)

    @torch.no_grad()
    def forward(self, frames_u8, batch: int = 32) -> torch.Tensor:
        feats = []
        frames = np.asarray(frames_u8)
        for i in range(0, len(frames), batch):
            x = F.interpolate(_to_float(frames[i:i + batch]), size=(299, 299), mode="bilinear", align_corners=False)
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
            x = F.max_pool2d(x, 3, 2)
            for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                         "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
                x = getattr(self, name)(x)
            feats.append(x.mean(dim=(2, 3)))
        return torch.cat(feats)


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^1/2) between Gaussians fitted to two feature sets
    (N, F). tr((C1 C2)^1/2) = sum of sqrt eigenvalues of C1^1/2 C2 C1^1/2 (symmetric PSD), so no
    general matrix square root is needed."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError("the Frechet distance needs at least 2 feature vectors per set")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(c1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(s1 @ c2 @ s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))
