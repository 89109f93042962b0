"""Does the trunk know where a pushed PushT T goes? A linear probe on its features.

For a window of true frames and actions, the next frame's tokens all masked (the first imagined
step), the trunk's output at that slot's image tokens is read by a fresh `StateHead` (the same
head `hma train --state-weight` trains, here on frozen features) fitted to the T's true change
of pose in that step on `--train` windows, and scored on `--test` windows: the error of its
predicted move of the T (block_x, block_y in PushT's 512-px units; block_angle in radians)
against predicting no move, and R^2 per column. A checkpoint trained with `--state-weight` is also
scored with its own head (`own`). The same probe on two checkpoints says whether a training change
put the push into the features the token head reads, whatever the drawing shows; every checkpoint
after the first gets the paired difference of its probe's errors from the first's (the same
windows, where the T moved), with a bootstrap interval.

    python scripts/state_probe.py --ckpt runs/s22/stC runs/s22/stA models/hma_discrete_moves \\
        --train data/pose/pusht --test data/bc/pusht --json runs/s22/state_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = ("block_x", "block_y", "block_angle")


def windows(ds, P: int, n: int, seed: int, skip: int = 0) -> list[int]:
    """n window starts (P + 1 valid steps inside one episode) from episodes >= skip, seeded."""
    eps = list(range(skip, len(ds.episodes)))
    starts = ds.window_starts(P + 1, eps)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(starts, size=min(n, len(starts)), replace=False).tolist())


def features(wm, ds, starts, P: int):
    """(N, S, D) trunk output at the masked slot's image tokens, (N, 3) the T's true change,
    (N, 3) the checkpoint's own head's prediction (NaN without one)."""
    import torch
    from tqdm import tqdm

    from hma_ros.evaluation.heldout import masked_step, window_tokens

    keys = list(ds.meta["state_keys"])
    cols = [keys.index(k) for k in COLUMNS]
    head = wm.dyn.state_heads[wm.embodiment] if wm.embodiment in wm.dyn.state_heads else None
    feats, moves, own = [], [], []
    for start in tqdm(starts, desc="features", leave=False):
        w = ds.window(start, P + 1)
        with torch.no_grad():
            codes, inp = window_tokens(wm, w)
            img = masked_step(wm, codes, inp, P, features=True)[1].float()
            if head is not None:
                own.append((head(img)[0, 0] * head.std + head.mean).numpy()[[keys.index(k) for k in COLUMNS]])
        feats.append(img[0, 0].numpy().astype(np.float32))
        st = np.asarray(ds.arrays["state"][start + P - 1:start + P + 1], np.float64)
        moves.append((st[1] - st[0])[cols])
    own_a = np.array(own) if own else np.full((len(starts), len(COLUMNS)), np.nan)
    return np.stack(feats), np.array(moves), own_a


def fit_probe(x: np.ndarray, y: np.ndarray, steps: int, seed: int):
    """A StateHead fitted to normalized moves on frozen features (Adam, full batch), on 90% of
    the windows, stopped where the other 10% were predicted best (the probe has more weights
    than windows)."""
    import copy

    import torch

    from hma_ros.model.dynamics import StateHead

    torch.manual_seed(seed)
    mean, std = y.mean(0), y.std(0) + 1e-9
    head = StateHead(x.shape[1], x.shape[2], y.shape[1], mean, std)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.05)
    xt, yt = torch.from_numpy(x), torch.from_numpy(((y - mean) / std).astype(np.float32))
    val = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)) < len(x) // 10)
    best, kept = float("inf"), copy.deepcopy(head.state_dict())
    for step in range(steps):
        err = (head(xt[:, None])[:, 0] - yt).square()
        loss = err[~val].mean()
        if step % 10 == 0 and float(err[val].mean()) < best:
            best, kept = float(err[val].mean()), copy.deepcopy(head.state_dict())
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.load_state_dict(kept)
    def predict(f: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy(f)[:, None])[:, 0].numpy() * std + mean

    return predict


def scores(pred: np.ndarray, true: np.ndarray) -> dict:
    if np.isnan(pred).all():
        return {}
    xy = np.linalg.norm((pred - true)[:, :2], axis=1)
    r2 = 1 - ((pred - true) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)
    return {"xy_err": round(float(xy.mean()), 2), "angle_err": round(float(np.abs(pred - true)[:, 2].mean()), 4),
            **{f"r2_{k}": round(float(v), 3) for k, v in zip(COLUMNS, r2, strict=True)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", nargs="+", required=True)
    ap.add_argument("--train", default="data/pose/pusht", help="PushT dataset with recorded state: the probe's fit")
    ap.add_argument("--test", default="data/bc/pusht", help="held-out PushT dataset: the probe's score")
    ap.add_argument("--test-skip", type=int, default=10, help="test episodes from this one (data/bc: 10)")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--steps", type=int, default=400, help="probe fitting steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import torch

    from hma_ros.data.dataset import Dataset
    from hma_ros.evaluation.ranking import mean_ci
    from hma_ros.runtime.world_model import WorldModel

    torch.set_num_threads(args.threads)
    train_ds, test_ds = Dataset(args.train), Dataset(args.test)
    out = {"train": args.train, "test": args.test, "models": {}}
    first = None  # per-window errors of the first checkpoint's probe, where the T moved: the paired control
    for ck in args.ckpt:
        wm = WorldModel.load(ck, "pusht")
        P = wm.dyn.cfg.prompt
        tr = windows(train_ds, P, args.n_train, args.seed)
        te = windows(test_ds, P, args.n_test, args.seed + 1, args.test_skip)
        x_tr, y_tr, _ = features(wm, train_ds, tr, P)
        x_te, y_te, own = features(wm, test_ds, te, P)
        probe = fit_probe(x_tr, y_tr, args.steps, args.seed)
        moved = np.linalg.norm(y_te[:, :2], axis=1) > 10  # the T moved over 10 of 512 px in the step
        row = {"test_windows": len(te), "moved_windows": int(moved.sum()),
               "still": scores(np.zeros_like(y_te), y_te), "probe": scores(probe(x_te), y_te),
               "probe_train": scores(probe(x_tr), y_tr), "own": scores(own, y_te),
               "moved": {"still": scores(np.zeros_like(y_te[moved]), y_te[moved]),
                         "probe": scores(probe(x_te[moved]), y_te[moved]), "own": scores(own[moved], y_te[moved])}}
        err = {"xy": np.linalg.norm((probe(x_te) - y_te)[:, :2], axis=1)[moved],
               "angle": np.abs(probe(x_te) - y_te)[moved, 2]}
        if first is None:
            first = err
        else:  # the same windows (seeded) for every checkpoint: paired against the first
            row["moved"]["probe_minus_first"] = {k: mean_ci(err[k] - first[k]) for k in err}
        out["models"][ck] = row
        print(ck, json.dumps(row))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
