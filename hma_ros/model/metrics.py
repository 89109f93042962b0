"""Image metrics (PSNR, SSIM) and the bootstrap confidence interval used by `hma eval`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR (dB) per image over the last three axes of uint8 arrays (..., H, W, 3)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


MOVING_THRESHOLD = 10  # uint8 levels: a pixel "moves" when a channel changes by more than this


def moving_pixels(frame: np.ndarray, prev: np.ndarray, threshold: int = MOVING_THRESHOLD) -> np.ndarray:
    """(..., H, W) bool: pixels of uint8 frames (..., H, W, 3) that changed since `prev` by more
    than `threshold` in any channel. The one definition of motion, for eval and training."""
    return np.abs(frame.astype(np.int16) - prev.astype(np.int16)).max(-1) > threshold


def moving_tokens(frames: np.ndarray, grid: int, threshold: int = MOVING_THRESHOLD) -> np.ndarray:
    """(N, grid*grid) bool, row-major like the tokenizers' codes: the token's image patch holds a
    moving pixel since the previous frame (frame 0 counts as still). frames (N, H, W, 3) uint8."""
    n, h, w = frames.shape[:3]
    out = np.zeros((n, grid, grid), dtype=bool)
    if n > 1:
        m = moving_pixels(frames[1:], frames[:-1], threshold)
        out[1:] = m.reshape(n - 1, grid, h // grid, grid, w // grid).any(axis=(2, 4))
    return out.reshape(n, grid * grid)


def masked_psnr(pred: np.ndarray, truth: np.ndarray, prev: np.ndarray, threshold: int = MOVING_THRESHOLD) -> np.ndarray:
    """PSNR over the pixels that change (`moving_pixels` of truth vs the previous truth frame);
    NaN where nothing changed. Shows dynamics where the background dominates."""
    moving = moving_pixels(truth, prev, threshold)  # (..., H, W)
    err = ((pred.astype(np.float64) - truth.astype(np.float64)) ** 2).mean(-1)
    n = moving.sum(axis=(-2, -1))
    mse = (err * moving).sum(axis=(-2, -1)) / np.maximum(n, 1)
    out = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
    return np.where(n > 0, out, np.nan)


def ssim_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM (Gaussian window 7, sigma 1.5, on luma) per image of (N, H, W, 3) uint8 arrays."""
    def luma(x):
        x = torch.from_numpy(np.ascontiguousarray(x)).double()
        return (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[:, None]

    x, y = luma(a), luma(b)
    k = torch.arange(7, dtype=torch.float64) - 3
    g = torch.exp(-(k**2) / (2 * 1.5**2))
    g = (g / g.sum())
    w = (g[:, None] * g[None, :])[None, None]

    def blur(z):
        return F.conv2d(z, w)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3)).numpy()


def bootstrap_ci(per_episode: np.ndarray, n: int = 2000, seed: int = 0,
                 weights: np.ndarray | None = None) -> tuple[float, float]:
    """95% interval of the mean by resampling episodes with replacement. With `weights` (e.g. each
    episode's count of frames that have the metric), of the weighted mean: the pooled mean over
    frames, resampled by episode -- the interval of a figure that pools frames."""
    v = np.asarray(per_episode, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = np.isfinite(v) & (w > 0)
    v, w = v[keep], w[keep]
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n, len(v)))
    means = (v[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
