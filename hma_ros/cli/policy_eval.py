"""`hma policy-eval`: run a checkpoint's act() in closed loop in the real simulator and score it
against a random policy (and the scripted controller, for reference).

    hma policy-eval --ckpt models/hma_discrete_small --embodiment pusht --episodes 50

Each episode: reset the simulator with a seed that gen-data never uses (from 1,000,000 up),
then at every 2 Hz step render the camera frame, `observe()` it with the chunk that led into
it, ask `act()` for the next chunk (stride actions at the native command rate) and apply it
action by action. The same loop with the dataset's smooth random policy (and, with
--scripted, the scripted controller) gives the baselines. PushT is scored by gym-pusht's own
`coverage` (the goal area the T covers; success = coverage > 95%), as max over the episode
(the usual PushT score) and at the end; other simulators report their state values at the end.
The loop lives in hma_ros/evaluation/policy.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="closed-loop act() in the simulator vs a random policy", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--embodiment", default="pusht", help="a simulated embodiment of the checkpoint (default pusht)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0, help="episode length (gym-pusht's own limit is 300 steps = 30 s)")
    p.add_argument("--temperature", type=float, default=0.0, help="act() sampling temperature (MAR heads)")
    p.add_argument("--act-samples", type=int, default=1,
                   help="MAR heads: execute the mean of this many act() samples (default 1: one sample)")
    p.add_argument("--scripted", action="store_true", help="also run the scripted controller (reference)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--gif", help="write the first model episode's camera frames here")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.evaluation.policy import PolicyEvalError, evaluate_policies, format_policy_table

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results, gif_frames = evaluate_policies(args.ckpt, args.embodiment, args.episodes, args.seconds,
                                                args.temperature, args.act_samples, args.scripted, args.seed)
    except PolicyEvalError as e:
        raise CliError(str(e)) from None
    print(format_policy_table(results))
    if args.gif and gif_frames:
        from hma_ros.data.images import write_video

        write_video(gif_frames, args.gif, fps=2.0)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0
