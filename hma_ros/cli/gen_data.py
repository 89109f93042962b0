"""`hma gen-data`: rollouts from real simulators to 2 Hz datasets (and optionally rosbag2).

    hma gen-data --out data/sim                      # the default mixture, 4 embodiments
    hma gen-data --out /tmp/d --embodiments pusht --episodes 5 --seconds 8 --bag
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hma_ros.data.generate import DEFAULTS


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="simulator rollouts -> 2 Hz datasets (optionally rosbag2)",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder: one dataset per embodiment inside")
    p.add_argument("--embodiments", default=",".join(DEFAULTS),
                   help="comma-separated embodiment names (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=None, help="episodes per embodiment (default: per embodiment)")
    p.add_argument("--seconds", type=float, default=None, help="episode length in s (default 15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bag", action="store_true", help="also write each rollout as a rosbag2 (mcap) in OUT/bags/")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--policies", default=None,
                   help="KIND=SHARE,... which policies drive the episodes (default expert=0.4,noisy=0.3,random=0.3); "
                        "kinds: expert, noisy, random, and for pusht pose, pose_noisy (PushTPosePusher, which solves "
                        "the task and pushes the T a lot) and pose_elsewhere (the same pushing the T towards random "
                        "poses, not the goal)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hma_ros.cli import CliError
    from hma_ros.data.embodiment import available_embodiments

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    names = [n.strip() for n in args.embodiments.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEFAULTS]
    if unknown:
        raise CliError(f"no simulator for {', '.join(unknown)}; gen-data knows {', '.join(DEFAULTS)} "
                       f"(embodiment configs: {', '.join(available_embodiments())})")
    policies = None
    if args.policies:
        from hma_ros.data.rollout import policy_schedule

        policies = {}
        for part in filter(None, (x.strip() for x in args.policies.split(","))):
            kind, _, share = part.partition("=")
            try:
                policies[kind.strip()] = float(share)
            except ValueError:
                raise CliError(f"--policies: {part!r} is not KIND=SHARE (e.g. pose=0.5,random=0.5)") from None
        try:
            policy_schedule(1, 0, policies)
        except ValueError as e:
            raise CliError(f"--policies: {e}") from None
        if any(k.startswith("pose") for k in policies) and set(names) - {"pusht"}:
            raise CliError(f"--policies {args.policies}: pose, pose_noisy and pose_elsewhere exist for pusht only "
                           f"(asked for {', '.join(names)}); add --embodiments pusht")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (out / n).exists() and not args.overwrite:
            raise CliError(f"{out / n} exists; pass --overwrite to replace it")
    from hma_ros.data.generate import generate_all

    t0 = time.time()
    results = generate_all(names, out, args.episodes, args.seconds, args.seed, args.bag, args.overwrite, args.workers,
                           policies)
    for r in results:
        print(f"{r['name']:<12} {r['episodes']:>4} episodes {r['steps']:>6} steps  {r['seconds']:>7.1f} s  -> {out / r['name']}")
    print(f"total wall time {time.time() - t0:.1f} s ({args.workers} workers)")
    return 0
