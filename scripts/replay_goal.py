"""Is the learned simulator's optimism the model's physics or a policy exploiting it?

Replays recorded PushT episodes through the world model open loop -- the episode's own commands,
not a policy reacting to imagined frames -- from their first `--prompt` real frames (the loop of
`hma synth` and of `hma policy-eval --rank`: each imagined frame observed as the next), and reads
the goal coverage off the pixels (`tracking.goal_cover`) of the real and the imagined frames of
the same steps. Per recording policy: mean max coverage real / imagined over the replayed steps,
and their paired difference with a bootstrap interval.

    python scripts/replay_goal.py --ckpt models/hma_discrete_moves --data data/test/pusht [--steps 20]

With --rank, the episodes are `hma policy-eval --rank`'s own: the same off-goal starts and standing-
still prompt, a graded policy run in gym-pusht as the ranking runs it (same seeds, same random
streams), its commands recorded and then replayed open loop through the model -- the ranking's
episodes without the policy reacting to imagined frames:

    python scripts/replay_goal.py --rank "waypoint pusher,pose pusher" --episodes 50 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hma_ros.data.dataset import Dataset  # noqa: E402
from hma_ros.evaluation.ranking import mean_ci  # noqa: E402
from hma_ros.evaluation.tracking import goal_cover  # noqa: E402
from hma_ros.runtime.synth import rollout_episode  # noqa: E402
from hma_ros.runtime.world_model import WorldModel  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="models/hma_discrete_moves")
    p.add_argument("--data", default="data/test/pusht")
    p.add_argument("--prompt", type=int, default=4)
    p.add_argument("--steps", type=int, default=20, help="replayed (imagined) 2 Hz steps per episode")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rank", help="comma-separated graded policies (ranking.POLICIES names): replay their "
                   "ranking episodes instead of --data")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge", default="models/pusht_judge")
    p.add_argument("--json")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.rank:
        return replay_rank(args)
    ds = Dataset(args.data)
    wm = WorldModel.load(args.ckpt, ds.name)
    frames, actions = np.asarray(ds.arrays["frames"]), np.asarray(ds.arrays["actions"])
    policies = ds.meta.get("policies") or ["?"] * len(ds.episodes)
    rows: dict[str, dict[str, list]] = {}
    for e, (a, n) in enumerate(ds.episodes):
        n = min(n, args.prompt + args.steps)
        if n <= args.prompt:
            continue
        imagined = rollout_episode(wm, frames[a:a + n], actions[a:a + n], args.prompt, seed=e)
        real = frames[a:a + n]
        r = rows.setdefault(policies[e], {"real": [], "imagined": []})
        r["real"].append(float(goal_cover(real[args.prompt:]).max()))
        r["imagined"].append(float(goal_cover(imagined[args.prompt:]).max()))
    out = {"ckpt": args.ckpt, "data": args.data, "prompt": args.prompt, "steps": args.steps, "policies": {}}
    print(f"{args.data}: {args.steps} replayed steps after {args.prompt} real frames; max goal coverage read off "
          "the pixels, real / imagined, imagined - real [95% CI]")
    for pol, r in rows.items():
        real, imag = np.array(r["real"]), np.array(r["imagined"])
        d = mean_ci(imag - real)
        out["policies"][pol] = {"episodes": len(real), "real": mean_ci(real), "imagined": mean_ci(imag),
                                "imagined_minus_real": d}
        print(f"  {pol:10s} {len(real):3d} episodes: {real.mean():.3f} / {imag.mean():.3f}, "
              f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def replay_rank(args) -> int:
    from hma_ros.evaluation.policy import SEED_BASE, open_world
    from hma_ros.evaluation.pusht_judge import load_judge
    from hma_ros.evaluation.ranking import POLICIES, episode_steps, off_goal_seeds, real_episode, still_prefix
    from hma_ros.runtime.synth import closed_loop

    judge = load_judge(args.judge)
    wm, emb, sim = open_world(args.ckpt, "pusht")
    names = [n.strip() for n in args.rank.split(",")]
    index = {p.name: i for i, p in enumerate(POLICIES)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise SystemExit(f"unknown policies {unknown}; ranking.POLICIES: {list(index)}")
    stride = wm.stride
    steps = episode_steps(args.seconds, sim, stride)
    prompt = wm.prompt
    seeds = off_goal_seeds(sim, args.episodes, SEED_BASE + args.seed * 10_000)
    out = {"ckpt": args.ckpt, "rank_seed": args.seed, "episodes": args.episodes, "seconds": args.seconds,
           "policies": {}}
    print(f"ranking episodes (--seed {args.seed}), {steps} model steps, commands recorded in gym-pusht and replayed "
          "open loop; max goal coverage read off the pixels, real / replayed, replayed - real [95% CI]")
    for name in names:
        pi, pol = index[name], POLICIES[index[name]]
        real_cov, imag_cov = [], []
        for ep, ep_seed in enumerate(seeds):
            sim.reset(ep_seed)
            prefix = still_prefix(sim, emb.image_spec, stride, prompt - 1)
            pol.start(judge, stride, sim.info, np.random.default_rng([args.seed, pi, ep]))
            chunks: list[np.ndarray] = []

            def recorded(frame, pol=pol, chunks=chunks):
                chunks.append(np.asarray(pol(frame), np.float32))
                return chunks[-1]

            real = real_episode(sim, emb.image_spec, recorded, steps)
            replay = iter(chunks)
            imagined = closed_loop(wm, prefix, lambda _frame, replay=replay: next(replay), steps, ep_seed)
            real_cov.append(float(goal_cover(real["frames"]).max()))
            imag_cov.append(float(goal_cover(imagined).max()))
        real_cov, imag_cov = np.array(real_cov), np.array(imag_cov)
        d = mean_ci(imag_cov - real_cov)
        out["policies"][name] = {"real": mean_ci(real_cov), "replayed": mean_ci(imag_cov), "replayed_minus_real": d}
        print(f"  {name:24s} {real_cov.mean():.3f} / {imag_cov.mean():.3f}, {d['mean']:+.3f} "
              f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    sim.close()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
