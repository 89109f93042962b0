"""`hma train-bc --data DATA --out DIR`: a small image behaviour-cloning policy for PushT
(frame -> the next 0.5 s of PD targets) from a dataset's demonstrations, saved at several
training steps (DIR/step_<n>.safetensors) for policies of graded quality; rank them with
`hma policy-eval --rank --bc DIR/step_300.safetensors,...`. The library is
hma_ros/evaluation/bc.py.

    hma gen-data --out data/pose --embodiments pusht --episodes 320 --policies pose=0.4,pose_noisy=0.4,random=0.2
    hma train-bc --data data/pose/pusht --out models/pusht_bc --steps 4000 --save-at 250,1000
"""

from __future__ import annotations


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train a PushT image behaviour-cloning policy", description=__doc__,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+",
                   help="PushT datasets with demonstrations (hma gen-data --policies ..., hma synth); PATH:N takes "
                        "the first N episodes of PATH")
    p.add_argument("--out", required=True)
    p.add_argument("--kinds", default="pose,pose_noisy", help="which episodes' policies to imitate")
    p.add_argument("--synthetic-frames", default="all", metavar="{all,real,imagined,first:N}",
                   help="of datasets written by hma synth, train on every step (all), only the real prompt "
                        "frames (real), only the imagined ones (imagined), or each episode's first N steps")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--save-at", default="250,1000", help="also save at these steps (comma-separated)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=0,
                   help="then run the final policy this many episodes in gym-pusht (off-goal starts, 10 s)")
    p.add_argument("--eval-seconds", type=float, default=10.0)
    p.add_argument("--json", help="with --eval-episodes: write the evaluation here")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import torch

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import Dataset, DatasetError
    from hma_ros.evaluation.bc import BCError, bc_examples, train_bc

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        save_at = [int(x) for x in args.save_at.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--save-at {args.save_at!r}: comma-separated step numbers") from None
    kinds = tuple(k.strip() for k in args.kinds.split(","))
    parts = []
    try:
        for item in args.data:
            path, _, n = item.partition(":")
            parts.append(bc_examples(Dataset(path), kinds, int(n) if n else None, args.synthetic_frames))
            print(f"{len(parts[-1][0])} (frame, chunk) examples from {item}")
    except ValueError as e:  # DatasetError, BCError, a bad :N
        raise CliError(str(e) if isinstance(e, DatasetError | BCError) else f"--data {item!r}: PATH or PATH:N") from None
    frames, chunks = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
    saved = train_bc(frames, chunks, args.steps, args.out, save_at, args.batch_size, args.lr, args.seed)
    for path in saved:
        print(f"saved {path}")
    if args.eval_episodes:
        import json
        from pathlib import Path

        from hma_ros.data.embodiment import load_embodiment
        from hma_ros.data.sims import make_sim
        from hma_ros.evaluation.ranking import FramePolicy, real_scores

        emb = load_embodiment("pusht")
        sim = make_sim("pusht")
        try:
            res = real_scores(FramePolicy(f"BC {saved[-1].stem}", "bc", path=str(saved[-1])), None, sim,
                              emb.image_spec, emb.stride, args.eval_episodes, args.eval_seconds)
        finally:
            sim.close()
        res.update({"data": args.data, "steps": args.steps, "examples": int(len(frames)),
                    "synthetic_frames": args.synthetic_frames})
        m = res["max_coverage"]
        print(f"gym-pusht, {args.eval_episodes} episodes: mean max coverage {m['mean']:.3f} "
              f"[{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}], success {res['success']['mean']:.2f}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0
