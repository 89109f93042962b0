"""`hma gen-closed-loop`: data from the learned simulator's closed loop, replayed for real.

A world model used as a simulator is exploited: a policy acting on imagined frames finds pushes
the model gets wrong (session 19: the imagined T slides along a push onto the goal while the
real one turns off it). This command runs policies in the learned simulator exactly as `hma
policy-eval --rank` does (real standing-still prefix, then each 2 Hz chunk answered from the newest
imagined frame, the agent and block read by the judge), records the native commands each issued,
and plays them in gym-pusht from the same start: an hma dataset of what those commands really do
(frames at the camera rate through the same 2 Hz chunker as gen-data). Trained on, it shows the
model the true consequences of the pushes it got wrong. Starts are off-goal seeds apart from every
start of ranking seeds 0-49 (`ranking.CLOSED_LOOP_BASE`).

    hma gen-closed-loop --ckpt models/hma_discrete_moves --judge models/pusht_judge --episodes 100 \\
        --policies pose:25,pose:80,waypoint:20 --out data/closed
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="learned-simulator closed-loop commands replayed in gym-pusht -> a dataset",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="the world model whose closed loop is replayed")
    p.add_argument("--judge", required=True, help="the PushT judge the policies read frames with (models/pusht_judge)")
    p.add_argument("--out", required=True, help="output folder: OUT/pusht")
    p.add_argument("--episodes", type=int, default=100, help="starts; every policy runs from each (default %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="policy time per episode after the standing-still "
                   "prefix (default %(default)s, as the ranking)")
    p.add_argument("--policies", default="pose:25,pose:80,waypoint:20",
                   help="KIND[:NOISE],... (KIND pose, waypoint or random; NOISE in world units; default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.evaluation.policy import PolicyEvalError, open_world
    from hma_ros.evaluation.pusht_judge import JudgeError, load_judge
    from hma_ros.evaluation.ranking import closed_loop_plans, parse_policies

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.episodes < 1:
        raise CliError(f"--episodes must be >= 1, got {args.episodes}")
    if not args.seconds > 0:
        raise CliError(f"--seconds must be > 0 (policy time per episode), got {args.seconds}")
    out = Path(args.out)
    if (out / "pusht").exists() and not args.overwrite:
        raise CliError(f"{out / 'pusht'} exists; pass --overwrite to replace it")
    try:
        policies = parse_policies(args.policies)
    except ValueError as e:
        raise CliError(f"--policies: {e}") from None
    try:
        judge = load_judge(args.judge)
        wm, emb, sim = open_world(args.ckpt, "pusht")
    except (PolicyEvalError, JudgeError) as e:
        raise CliError(str(e)) from None
    t0 = time.time()
    try:
        plans = closed_loop_plans(wm, judge, sim, emb.image_spec, policies, args.episodes, args.seconds, args.seed)
    finally:
        sim.close()
    t1 = time.time()
    from hma_ros.data.generate import generate_replays

    res = generate_replays("pusht", out, plans, source=f"hma gen-closed-loop ({args.ckpt}, seed {args.seed})",
                           overwrite=args.overwrite,
                           extra_meta={"closed_loop": {"checkpoint": str(args.ckpt), "judge": str(args.judge),
                                                       "policies": [p.name for p in policies],
                                                       "seconds": args.seconds, "seed": args.seed,
                                                       "starts": sorted({s for s, _, _ in plans})}})
    res.update({"closed_loop_s": round(t1 - t0, 1), "out": str(out / "pusht")})
    print(json.dumps(res))
    return 0
