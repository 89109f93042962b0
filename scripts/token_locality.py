"""Is a tokenizer's code local? Two measurements on real test frames, per checkpoint:

1. still-token flips: between consecutive frames of an episode, the share of tokens whose whole
   5x5-token neighbourhood (40x40 px at 64x64) did not change (every pixel within 3 levels) but
   whose code did. A local code gives 0; every flip is a change the dynamics model must predict
   that the scene does not make.
2. a far dab: a 3x3-pixel agent-blue dab painted into the top-left corner of PushT frames; the
   share of tokens whose code changes, by distance (in tokens) from the corner token.

    python scripts/token_locality.py models/hma_discrete_moves [CKPT ...] [--data data/test]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.ndimage import minimum_filter

from hma_ros.data.dataset import Dataset
from hma_ros.model.checkpoint import load_checkpoint
from hma_ros.runtime.world_model import build_models


def codes(tok, frames: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([tok.encode(torch.from_numpy(frames[i:i + 256])) for i in range(0, len(frames), 256)]).numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--embodiments", default="pusht,reacher,cheetah")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for ck in args.ckpts:
        cfg, state = load_checkpoint(ck)
        tok = build_models({"tokenizer": cfg["tokenizer"]}, state, ck)[0]
        g = tok.cfg.grid
        line = [f"{ck}: still-token flips"]
        for emb in args.embodiments.split(","):
            ds = Dataset(f"{args.data}/{emb}")
            f = np.array(ds.arrays["frames"])
            ep = np.asarray(ds.arrays["episode"])
            same = ep[1:] == ep[:-1]
            ps = f.shape[1] // g
            diff = np.abs(f[1:].astype(np.int16) - f[:-1].astype(np.int16)).max(-1)
            still = diff.reshape(-1, g, ps, g, ps).max((2, 4)) <= 3
            still = np.stack([minimum_filter(s.astype(np.uint8), size=5, mode="nearest").astype(bool) for s in still])
            c = codes(tok, f)
            flip = (c[1:] != c[:-1]).any(-1).reshape(-1, g, g)
            line.append(f"{emb} {flip[same][still[same]].mean():.3f}")
        print(", ".join(line))
        f = np.array(Dataset(f"{args.data}/pusht").arrays["frames"][::10])
        dab = f.copy()
        dab[:, 0:3, 0:3] = (65, 105, 225)
        changed = (codes(tok, f) != codes(tok, dab)).any(-1).reshape(-1, g, g).mean(0)
        dist = np.maximum(*np.mgrid[0:g, 0:g])  # Chebyshev distance in tokens from the corner token
        print(f"{ck}: far dab ({len(f)} PushT frames), tokens changed at distance "
              + ", ".join(f"{d}: {changed[dist == d].mean():.3f}" for d in range(g)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
