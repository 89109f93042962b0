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
    p.add_argument("--data", required=True, help="a PushT dataset with demonstrations (hma gen-data --policies ...)")
    p.add_argument("--out", required=True)
    p.add_argument("--kinds", default="pose,pose_noisy", help="which episodes' policies to imitate")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--save-at", default="250,1000", help="also save at these steps (comma-separated)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
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
    try:
        ds = Dataset(args.data)
        frames, chunks = bc_examples(ds, tuple(k.strip() for k in args.kinds.split(",")))
    except (DatasetError, BCError) as e:
        raise CliError(str(e)) from None
    print(f"{len(frames)} (frame, chunk) examples from {args.data}")
    for path in train_bc(frames, chunks, args.steps, args.out, save_at, args.batch_size, args.lr, args.seed):
        print(f"saved {path}")
    return 0
