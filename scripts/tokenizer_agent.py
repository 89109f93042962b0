"""Share of real PushT test frames whose tokenizer reconstruction keeps the agent within 4 px
(1/16 of 64) of where the simulator state puts it -- the ceiling a dynamics model on that
tokenizer can reach in `hma eval`'s "agent within". Every frame of the dataset, not windows.

    python scripts/tokenizer_agent.py [--data data/test/pusht] CKPT [CKPT ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hma_ros.data.dataset import Dataset
from hma_ros.evaluation.tracking import agent_errors
from hma_ros.model.checkpoint import load_checkpoint
from hma_ros.runtime.world_model import build_models


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--data", default="data/test/pusht")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = Dataset(args.data)
    keys = ds.meta["state_keys"]
    xy = np.asarray(ds.arrays["state"])[:, [keys.index("agent_x"), keys.index("agent_y")]]
    frames = np.array(ds.arrays["frames"])
    for ck in args.ckpts:
        cfg, state = load_checkpoint(ck)
        tok, _ = build_models({k: v for k, v in cfg.items() if k in ("kind", "tokenizer")}, state, ck)
        with torch.no_grad():
            rec = np.concatenate([tok.decode(tok.encode(torch.from_numpy(frames[i:i + 200]))).numpy()
                                  for i in range(0, len(frames), 200)])
        present, err = agent_errors(rec, xy)
        print(f"{ck}: {len(rec)} frames, agent present {present.mean():.3f}, within 4 px {np.mean(err <= 4.0):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
