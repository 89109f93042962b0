"""`hma train-judge`: train the PushT judge (frame -> agent position, block pose, coverage) on
simulator frames with their true state, and report its error on held-out frames.

    hma train-judge --posed 30000 --data data/sim/pusht --heldout data/test/pusht --out models/pusht_judge

Training frames: --posed N frames rendered by gym-pusht at random poses (agent and block
anywhere, a third of the blocks near the goal), plus the frames of --data episodes (pushing
states: contact, partial coverage). Held-out: episodes no training frame came from.

The judge scores episodes of the learned simulator from their imagined frames (`hma policy-eval
--rank`). Coverage is computed from the estimated pose with gym-pusht's geometry. The library is
hma_ros/evaluation/pusht_judge.py.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train the PushT judge that scores imagined frames", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="*", default=[], help="PushT datasets with simulator state (hma gen-data)")
    p.add_argument("--posed", type=int, default=30000,
                   help="also this many frames rendered at random poses (default %(default)s; ~10 ms each)")
    p.add_argument("--absent", type=float, default=0.1,
                   help="share of the posed frames rendered with no T on the table, so the judge learns to say "
                        "'no T' (coverage 0) instead of reading a pose into an imagined frame whose T vanished "
                        "(default %(default)s; 0: the version-1 judge, no such output)")
    p.add_argument("--heldout", help="a PushT dataset to measure the judge's error on (e.g. data/test/pusht)")
    p.add_argument("--out", required=True, help="folder for judge.safetensors")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=32, help="channels of the first convolution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.set_defaults(func=run)


def _load(path: str):
    import numpy as np

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import Dataset, DatasetError

    try:
        d = Dataset(path)
    except DatasetError as e:
        raise CliError(str(e)) from None
    if "state" not in d.arrays:
        raise CliError(f"{path}: the dataset has no simulator state; the judge trains on `hma gen-data` PushT data")
    ok = np.asarray(d.arrays["frame_mask"], bool)
    return np.asarray(d.arrays["frames"])[ok], np.asarray(d.arrays["state"])[ok], list(d.meta["state_keys"])


def run(args) -> int:
    import numpy as np
    import torch

    from hma_ros.cli import CliError
    from hma_ros.evaluation.pusht_judge import (
        JudgeError,
        empty_table_errors,
        judge_errors,
        load_judge,
        posed_frames,
        save_judge,
        targets,
        train_judge,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    if not 0.0 <= args.absent < 1.0:
        raise CliError(f"--absent is a share of the posed frames in [0, 1), got {args.absent}")
    if not args.data and args.posed <= 0:
        raise CliError("nothing to train on: give --data PushT datasets and/or --posed N")
    parts = [_load(d) for d in args.data]
    if args.posed > 0:
        parts.append(posed_frames(args.posed, args.seed, absent=args.absent))
    ys = []
    for (_, states, keys), where in zip(parts, [*args.data, "posed frames"], strict=False):
        try:
            ys.append(targets(states, keys))
        except JudgeError as e:
            raise CliError(f"{where}: {e}") from None
    frames = np.concatenate([p[0] for p in parts])
    judge, losses = train_judge(frames, np.concatenate(ys), args.steps, args.batch_size, args.lr, args.seed,
                                args.width)
    info = {"data": args.data, "posed": args.posed, "frames": int(len(frames)), "steps": args.steps,
            "final_loss": losses[-1] if losses else None}
    path = save_judge(judge, args.out, info)
    if args.heldout:  # measured on the judge as saved (fp16 weights)
        hf, hs, hk = _load(args.heldout)
        info["heldout"] = {"data": args.heldout, **judge_errors(load_judge(path), hf, hs, hk)}
        e = info["heldout"]
        print(f"held-out {args.heldout} ({e['frames']} frames): agent {e['agent_err_median_px']:.2f} px median, "
              f"block {e['block_err_median_px']:.2f} px, angle {e['angle_err_median_deg']:.1f} deg median "
              f"(p90 {e['angle_err_p90_deg']:.1f}), coverage MAE {e['coverage_mae']:.4f} "
              f"({e['coverage_mae_when_covering']:.4f} where the T covers the goal)"
              + (f", called empty {e['t_called_absent']:.2%}" if e["t_called_absent"] is not None else ""))
        path = save_judge(judge, args.out, info)
    info["empty_table"] = empty_table_errors(load_judge(path))
    e = info["empty_table"]
    print(f"{e['frames']} rendered frames with no T: called empty {e['called_empty']:.1%}, coverage read "
          f"{e['coverage_mean']:.3f} mean / {e['coverage_max']:.3f} max")
    path = save_judge(judge, args.out, info)
    (path.parent / "judge.json").write_text(json.dumps(info, indent=2))
    print(f"wrote {path}")
    return 0
