"""PushT judge: a camera frame -> (agent position, block pose, goal coverage), learned.

The learned simulator's episodes have no simulator state to score them by, only frames. The
judge reads the state off a frame: a small CNN regresses the agent's position and the T block's
pose (x, y, sin, cos of the angle) in gym-pusht's world units, trained on simulator frames with
their true state (`hma train-judge`); coverage is then computed from the estimated pose with
gym-pusht's own geometry (`coverage`: the T's polygon intersected with the goal's, over the
goal's area), so the judge never learns a number it could compute exactly.

Trained on real frames, it is applied to imagined ones: training adds a little blur and noise
so a tokenizer's softer reconstruction does not read as a different pose. Its own error on
held-out real frames (`judge_errors`) is reported beside every score it gives, and policy
ranking scores the ground-truth episodes both by the simulator and by the judge, so the judge's
bias is visible next to the learned simulator's.

Weights are fp16 safetensors (`save_judge` / `load_judge`), the config in the file's metadata.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

GOAL_POSE = (256.0, 256.0, math.pi / 4)  # gym-pusht's fixed goal (x, y, angle)
TEE_SCALE, TEE_LENGTH = 30.0, 4.0  # gym-pusht's add_tee defaults
WORLD = 512.0
OUTPUTS = ("agent_x", "agent_y", "block_x", "block_y", "sin", "cos")
STATE_KEYS = ("block_x", "block_y", "block_angle", "coverage", "agent_x", "agent_y")


class JudgeError(ValueError):
    """A judge file or dataset that cannot be used (the message says why and what to do)."""


# ----------------------------------------------------------------------------- geometry
def _tee_local() -> list[np.ndarray]:
    s, n = TEE_SCALE, TEE_LENGTH
    bar = np.array([(-n * s / 2, s), (n * s / 2, s), (n * s / 2, 0), (-n * s / 2, 0)])
    stem = np.array([(-s / 2, s), (-s / 2, n * s), (s / 2, n * s), (s / 2, s)])
    return [bar, stem]


def tee_polygon(x: float, y: float, angle: float):
    """The T block at pose (x, y, angle) as a shapely MultiPolygon (gym-pusht's body frame:
    world = position + R(angle) @ local vertex)."""
    import shapely.geometry as sg

    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return sg.MultiPolygon([sg.Polygon(v @ rot.T + (x, y)) for v in _tee_local()])


_GOAL_CACHE: dict = {}


def coverage(x: float, y: float, angle: float, goal: tuple = GOAL_POSE) -> float:
    """Share of the goal's area the T covers at pose (x, y, angle): gym-pusht's `coverage`."""
    g = _GOAL_CACHE.get(goal)
    if g is None:
        g = _GOAL_CACHE[goal] = tee_polygon(*goal)
    return float(g.intersection(tee_polygon(x, y, angle)).area / g.area)


# ----------------------------------------------------------------------------- the network
def frame_net(image_size: int, width: int, outputs: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The small frame reader shared by the judge and the BC policy: four stride-2 convolutions
    (GroupNorm, SiLU) and an MLP head to `outputs` values."""
    layers, c = [], 3
    for co in (width, 2 * width, 4 * width, 4 * width):
        layers += [nn.Conv2d(c, co, 3, stride=2, padding=1), nn.GroupNorm(8, co), nn.SiLU()]
        c = co
    side = image_size // 16
    return nn.Sequential(*layers), nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, 256), nn.SiLU(),
                                                 nn.Linear(256, outputs))


def save_net(net: nn.Module, path: Path, fmt: str, extra: dict | None = None) -> Path:
    """A small net (with a `config` dict of its constructor's arguments) as fp16 safetensors."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": fmt, "config": json.dumps(net.config), "info": json.dumps(extra or {})}
    save_file({k: v.detach().half().contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    return path


def load_net(path: Path, fmt: str, cls, error, what: str):
    """The inverse of save_net: a `cls` in eval mode (fp32), or `error` saying what is wrong."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise error(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != fmt:
        raise error(f"{path}: not a {what} (format {meta.get('format')!r})")
    net = cls(**json.loads(meta["config"]))
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.eval()


class PushTJudge(nn.Module):
    """uint8 frames (N, H, W, 3) -> (N, 6): agent x, y and block x, y in world units / 512,
    and the block angle's sine and cosine. Four stride-2 convolutions and a small MLP.

    With `visibility`, a seventh output is the logit that a T is on the table at all: an
    imagined frame can lose its T (the model erased it), and a pose regressor trained only on
    whole Ts reads a pose into the empty table anyway -- near the goal, where its training
    poses cluster (version 1 on 500 rendered empty tables: coverage 0.131 mean, 0.534 max).
    Such a judge reports coverage 0 where it sees no T."""

    def __init__(self, image_size: int = 64, width: int = 32, visibility: bool = False):
        super().__init__()
        self.config = {"image_size": int(image_size), "width": int(width)}
        if visibility:  # older judge files have no such key (and no such output)
            self.config["visibility"] = True
        self.visibility = bool(visibility)
        self.features, self.head = frame_net(image_size, width, 7 if visibility else 6)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.features(x))

    @torch.no_grad()
    def estimate(self, frames: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """Frames (N, H, W, 3) or one (H, W, 3) uint8 -> agent (N, 2), block (N, 3: x, y, angle)
        in world units, and coverage (N,) computed from the block pose; a judge with visibility
        also gives t_visible (N,), the probability that a T is there, and coverage 0 where it
        is under one half."""
        frames = np.asarray(frames)
        single = frames.ndim == 3
        if single:
            frames = frames[None]
        h, w = frames.shape[1:3]
        if (h, w) != (self.config["image_size"],) * 2:
            raise JudgeError(f"the judge reads {self.config['image_size']}x{self.config['image_size']} frames, "
                             f"got {h}x{w}: resize them (the embodiment's image_size) first")
        self.eval()
        out = torch.cat([self(torch.from_numpy(np.ascontiguousarray(frames[i:i + batch])))
                         for i in range(0, len(frames), batch)]).double().numpy()
        agent = out[:, :2] * WORLD
        block = np.stack([out[:, 2] * WORLD, out[:, 3] * WORLD, np.arctan2(out[:, 4], out[:, 5])], axis=1)
        cov = np.array([coverage(*b) for b in block])
        res = {"agent": agent, "block": block, "coverage": cov}
        if self.visibility:
            res["t_visible"] = 1.0 / (1.0 + np.exp(-out[:, 6]))
            res["coverage"] = np.where(res["t_visible"] >= 0.5, cov, 0.0)
        return {k: v[0] for k, v in res.items()} if single else res


def targets(states: np.ndarray, keys: list[str]) -> np.ndarray:
    """Dataset state rows -> the judge's (N, 6) regression targets (NaN block entries: no T in
    the frame, see `posed_frames(absent=...)`)."""
    try:
        col = {k: states[:, keys.index(k)].astype(np.float64) for k in STATE_KEYS}
    except ValueError:
        raise JudgeError(f"the dataset's state has {keys}; the judge needs {list(STATE_KEYS)} "
                         "(a PushT dataset from `hma gen-data`)") from None
    return np.stack([col["agent_x"] / WORLD, col["agent_y"] / WORLD, col["block_x"] / WORLD,
                     col["block_y"] / WORLD, np.sin(col["block_angle"]), np.cos(col["block_angle"])], 1)


def posed_frames(n: int, seed: int = 0, image_size: int = 64, near_goal: float = 0.35,
                 progress: bool = True, absent: float = 0.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """n simulator frames at random poses with their true state (frames (n, S, S, 3) uint8,
    states (n, k), state keys): the agent anywhere, the block anywhere in the table, at any
    angle, a `near_goal` share of them near the goal so partial coverage is well represented.
    Poses are read back after gym-pusht separates an overlapping agent and block. An `absent`
    share of the frames shows no T at all (gym-pusht's renderer with the block moved off the
    table): their block pose is NaN and their coverage 0, for a judge that learns to say so."""
    from tqdm import tqdm

    from hma_ros.data.images import ImageSpec
    from hma_ros.data.sims import make_sim

    rng = np.random.default_rng(seed)
    sim = make_sim("pusht")
    spec = ImageSpec(size=(image_size, image_size))
    frames, states = [], []
    try:
        for _ in tqdm(range(n), desc="posed frames", unit="frame", disable=not progress):
            agent = rng.uniform(15.0, 497.0, 2)
            if rng.random() < near_goal:
                block = np.array(GOAL_POSE[:2]) + rng.normal(0.0, 40.0, 2)
                angle = GOAL_POSE[2] + rng.normal(0.0, 0.6)
            else:
                block, angle = rng.uniform(60.0, 452.0, 2), rng.uniform(-np.pi, np.pi)
            sim.reset_to(agent, block, angle)
            st = sim.state()
            if absent > 0 and rng.random() < absent:  # no draw at absent=0: version 1's frames, unchanged
                sim.u.block.position = (-10.0 * WORLD, -10.0 * WORLD)  # off the table: not drawn
                sim.u.space.reindex_shapes_for_body(sim.u.block)
                st = {**st, "block_x": np.nan, "block_y": np.nan, "block_angle": np.nan, "coverage": 0.0}
            frames.append(spec.prepare(sim.render()))
            states.append([st[k] for k in STATE_KEYS])
    finally:
        sim.close()
    return np.stack(frames), np.asarray(states), list(STATE_KEYS)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Half the batch blurred (3x3 box), all with a little pixel noise: imagined frames are softer."""
    x = x.float()
    n = x.shape[0]
    blur = torch.rand(n, generator=g) < 0.5
    if blur.any():
        xb = x[blur].permute(0, 3, 1, 2)
        xb = nn.functional.avg_pool2d(nn.functional.pad(xb, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        x[blur] = xb.permute(0, 2, 3, 1)
    x = x + 4.0 * torch.randn(x.shape, generator=g)
    return x.clamp(0, 255)


def train_judge(frames: np.ndarray, y: np.ndarray, steps: int = 3000, batch_size: int = 64, lr: float = 1e-3,
                seed: int = 0, width: int = 32, progress: bool = True) -> tuple[PushTJudge, list[float]]:
    """Fit a judge to frames (N, H, W, 3) uint8 and targets (N, 6) (see `targets`). Returns the
    judge and its training loss every 100 steps."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    present = np.isfinite(y).all(axis=1)
    judge = PushTJudge(frames.shape[1], width, visibility=not present.all())  # frames without a T: learn to say so
    opt = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    X = torch.from_numpy(np.ascontiguousarray(frames))
    Y = torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32))
    V = torch.from_numpy(present)
    known = torch.from_numpy(np.isfinite(y))  # the block's targets of a frame without a T are unknown
    losses, run = [], 0.0
    judge.train()
    bar = tqdm(range(steps), desc="train judge", unit="step", disable=not progress)
    for step in bar:
        idx = torch.randint(len(X), (batch_size,), generator=g)
        pred = judge.head(judge.features(_augment(X[idx], g).permute(0, 3, 1, 2) / 127.5 - 1.0))
        err = nn.functional.smooth_l1_loss(pred[:, :6], Y[idx], beta=0.02, reduction="none")
        loss = (err * known[idx]).sum() / known[idx].sum().clamp_min(1)
        if judge.visibility:
            loss = loss + 0.1 * nn.functional.binary_cross_entropy_with_logits(pred[:, 6], V[idx].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run += loss.item()
        if (step + 1) % 100 == 0:
            losses.append(run / 100)
            bar.set_postfix(loss=f"{run / 100:.4f}")
            run = 0.0
    judge.eval()
    return judge, losses


def judge_errors(judge: PushTJudge, frames: np.ndarray, states: np.ndarray, keys: list[str]) -> dict:
    """The judge against the simulator's state on frames it did not train on: median and 90th
    percentile agent / block position error (world units and pixels of the frame), block angle
    error (degrees), coverage mean absolute error."""
    est = judge.estimate(frames)
    col = {k: states[:, keys.index(k)].astype(np.float64) for k in STATE_KEYS}
    px = frames.shape[1] / WORLD
    agent = np.linalg.norm(est["agent"] - np.stack([col["agent_x"], col["agent_y"]], 1), axis=1)
    block = np.linalg.norm(est["block"][:, :2] - np.stack([col["block_x"], col["block_y"]], 1), axis=1)
    ang = np.abs((est["block"][:, 2] - col["block_angle"] + np.pi) % (2 * np.pi) - np.pi)
    cov = np.abs(est["coverage"] - col["coverage"])
    return {"frames": int(len(frames)),
            "agent_err_median": float(np.median(agent)), "agent_err_p90": float(np.percentile(agent, 90)),
            "agent_err_median_px": float(np.median(agent) * px),
            "block_err_median": float(np.median(block)), "block_err_p90": float(np.percentile(block, 90)),
            "block_err_median_px": float(np.median(block) * px),
            "angle_err_median_deg": float(np.degrees(np.median(ang))),
            "angle_err_p90_deg": float(np.degrees(np.percentile(ang, 90))),
            "coverage_mae": float(cov.mean()),
            "coverage_mae_when_covering": float(cov[col["coverage"] > 0].mean()) if (col["coverage"] > 0).any()
            else None,
            # a judge with visibility: real frames (a T on every one) it took for empty tables
            "t_called_absent": float(np.mean(est["t_visible"] < 0.5)) if "t_visible" in est else None}


def empty_table_errors(judge: PushTJudge, n: int = 500, seed: int = 1_000) -> dict:
    """The judge on n rendered frames with no T on the table (`posed_frames(absent=1)`): the
    share it calls empty and the coverage it reads into them (a judge without visibility reads
    a pose into every one)."""
    frames, _, _ = posed_frames(n, seed, judge.config["image_size"], progress=False, absent=1.0)
    est = judge.estimate(frames)
    called = est["t_visible"] < 0.5 if "t_visible" in est else np.zeros(len(frames), bool)
    return {"frames": int(n), "called_empty": float(called.mean()), "coverage_mean": float(est["coverage"].mean()),
            "coverage_max": float(est["coverage"].max())}


def save_judge(judge: PushTJudge, path: str | Path, extra: dict | None = None) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "judge.safetensors"
    return save_net(judge, path, "hma_ros.pusht_judge", extra)  # fp16 on disk (1.5 MB); loaded back as fp32


def load_judge(path: str | Path) -> PushTJudge:
    """A judge from its safetensors file or the folder holding judge.safetensors."""
    path = Path(path)
    folder = path.parent if path.suffix == ".safetensors" else path
    if path.is_dir():
        path = path / "judge.safetensors"
    if not path.is_file():
        raise JudgeError(f"{path}: no judge file; train one with `hma train-judge --data data/sim/pusht --out "
                         f"{folder}` or pass the shipped models/pusht_judge")
    return load_net(path, "hma_ros.pusht_judge", PushTJudge, JudgeError, "PushT judge")
