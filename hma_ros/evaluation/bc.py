"""A small image behaviour-cloning policy for PushT (the learned policy that `hma policy-eval
--rank` grades beside the scripted ones, and that synthetic data should improve, paper Sec. 5.4).

frame (64x64 RGB, uint8) -> the next 0.5 s chunk of PD targets (stride x 2, world units), from
the demonstrations of a dataset (`hma gen-data --policies pose=...,pose_noisy=...`): every valid
2 Hz step of the episodes driven by the chosen policy kinds is one (frame, chunk) example.
The backbone is the judge's (four stride-2 convolutions), trained from scratch with an L1 loss on
targets / 512; checkpoints saved at chosen steps give policies of graded quality. Safetensors,
fp16 on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hma_ros.evaluation.pusht_judge import frame_net, load_net, save_net

WORLD = 512.0
FORMAT = "hma_ros.pusht_bc"


class BCError(ValueError):
    """A BC policy that cannot be trained or loaded as asked (the message says why)."""


class BCPolicy(nn.Module):
    def __init__(self, image_size: int = 64, width: int = 32, stride: int = 5, action_dim: int = 2):
        super().__init__()
        self.config = {"image_size": int(image_size), "width": int(width), "stride": int(stride),
                       "action_dim": int(action_dim)}
        self.features, self.head = frame_net(image_size, width, stride * action_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> (N, stride, action_dim) targets / 512."""
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.features(x)).reshape(-1, self.config["stride"], self.config["action_dim"])

    @torch.no_grad()
    def act(self, frame: np.ndarray) -> np.ndarray:
        """One frame (H, W, 3) uint8 -> (stride, action_dim) PD targets in world units."""
        if frame.shape[:2] != (self.config["image_size"],) * 2:
            raise BCError(f"the BC policy reads {self.config['image_size']}px frames, got {frame.shape[1]}x{frame.shape[0]}")
        self.eval()
        return (self(torch.from_numpy(np.ascontiguousarray(frame))[None])[0] * WORLD).double().numpy()


SYNTHETIC_FRAMES = ("all", "real", "imagined", "first:N")


def synthetic_steps(ds, which: str = "all") -> np.ndarray:
    """(n_steps,) bool: the steps of `ds` that `which` keeps. A dataset written by `hma synth`
    (meta `synthetic_from_step` = P) holds each episode's first P frames real and the rest
    imagined: "real" keeps those P, "imagined" the rest, "first:N" each episode's first N steps
    (the real prompt and the first N - P imagined ones), "all" every step. Other datasets: all."""
    head, _, n = which.partition(":")
    if not (which in ("all", "real", "imagined") or (head == "first" and n.isdigit() and int(n) >= 1)):
        raise BCError(f"--synthetic-frames {which!r}: one of {', '.join(SYNTHETIC_FRAMES)} (N a positive step count)")
    P = ds.meta.get("synthetic_from_step")
    if which == "all" or P is None:
        return np.ones(len(ds), bool)
    pos = np.zeros(len(ds), int)  # each step's index within its episode
    for a, length in ds.episodes:
        pos[a:a + length] = np.arange(length)
    if which == "real":
        return pos < P
    if which == "imagined":
        return pos >= P
    return pos < int(n)


def bc_examples(ds, kinds: tuple[str, ...] = ("pose", "pose_noisy"), episodes: int | None = None,
                synthetic: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """(frames (N, H, W, 3) uint8, chunks (N, stride, dim) float32): each valid step of the
    dataset's episodes (the first `episodes` of them) whose driving policy (meta `policies`) is
    one of `kinds`; of a synthetic dataset, the steps `synthetic` picks (`synthetic_steps`)."""
    pols = ds.meta.get("policies")
    if not pols or len(pols) != len(ds.episodes):
        raise BCError(f"{ds.path}: no per-episode policy record (meta 'policies'); use an `hma gen-data` dataset")
    if episodes is not None and not 0 < episodes <= len(ds.episodes):
        raise BCError(f"{ds.path}:{episodes}: it has {len(ds.episodes)} episodes")
    valid = ds.valid() & synthetic_steps(ds, synthetic)
    idx = [i for e, (a, n) in enumerate(ds.episodes[:episodes]) if pols[e] in kinds for i in range(a, a + n)
           if valid[i]]
    if not idx:
        raise BCError(f"{ds.path}: no episodes driven by {', '.join(kinds)} (it has {', '.join(sorted(set(pols)))}); "
                      f"generate some with hma gen-data --policies pose=0.5,pose_noisy=0.5")
    idx = np.asarray(idx)
    return np.asarray(ds.arrays["frames"])[idx], np.asarray(ds.arrays["actions"])[idx]


def save_bc(policy: BCPolicy, path: str | Path, extra: dict | None = None) -> Path:
    return save_net(policy, Path(path), FORMAT, extra)  # fp16 on disk, loaded back as fp32


def load_bc(path: str | Path) -> BCPolicy:
    path = Path(path)
    if not path.is_file():
        raise BCError(f"{path}: no BC policy here; train one with hma train-bc --data DATA --out DIR")
    return load_net(path, FORMAT, BCPolicy, BCError, "BC policy")


def train_bc(frames: np.ndarray, chunks: np.ndarray, steps: int, out: str | Path, save_at: list[int],
             batch_size: int = 64, lr: float = 1e-3, seed: int = 0, width: int = 32, progress: bool = True) -> list[Path]:
    """Fit a BC policy; saves OUT/step_<n>.safetensors at every n in save_at (and at `steps`)."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    stride, dim = chunks.shape[1:]
    policy = BCPolicy(frames.shape[1], width, stride, dim)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    X = torch.from_numpy(np.ascontiguousarray(frames))
    Y = torch.from_numpy(np.asarray(chunks, np.float32) / WORLD)
    marks = sorted(set(save_at) | {steps})
    saved = []
    policy.train()
    bar = tqdm(range(1, steps + 1), desc="train bc", unit="step", disable=not progress)
    for step in bar:
        for grp in opt.param_groups:
            grp["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        i = torch.randint(len(X), (batch_size,), generator=g)
        loss = nn.functional.l1_loss(policy(X[i]), Y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step in marks:
            saved.append(save_bc(policy, Path(out) / f"step_{step}.safetensors",
                                 {"step": step, "examples": int(len(X)), "loss": float(loss.item())}))
            policy.train()
    return saved
