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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SEED_BASE = 1_000_000  # gen-data seeds are seed * 100_003 + episode, far below this
SCORES = {"pusht": ("coverage_max", "coverage_end", "success_max"),  # what each simulator is scored by
          "reacher": ("finger_to_target_end",), "cheetah": ("speed_end",),
          "manipulator": ("ball_x_end", "ball_z_end")}


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


def run_episode(sim, spec, stride: int, steps: int, seed: int, choose, wm=None) -> tuple[dict, list]:
    """One closed-loop episode. choose() -> (stride, dim) chunk; with wm, observe() every step first.
    Returns (summary of sim.state() values, frames)."""
    sim.reset(seed)
    if wm is not None:
        wm.reset(seed)
    chunk_in = None
    states, frames = [], []
    for _ in range(steps):
        frame = spec.prepare(sim.render())
        frames.append(frame)
        if wm is not None:
            wm.observe(frame, chunk_in)
        chunk = np.asarray(choose(), dtype=np.float64)
        for a in chunk:
            sim.step(sim.clip(a))
            states.append(sim.state())
        chunk_in = np.asarray([sim.clip(a) for a in chunk], dtype=np.float32)
    keys = states[0].keys()
    out = {f"{k}_end": float(states[-1][k]) for k in keys}
    out.update({f"{k}_max": float(max(s[k] for s in states)) for k in keys})
    return out, frames


def summarize(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: {"mean": float(np.mean([r[k] for r in rows])),
                "sem": float(np.std([r[k] for r in rows]) / np.sqrt(len(rows)))} for k in keys}


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import DatasetError, embodiment_from_dict_loose
    from hma_ros.data.sims import Policy, SmoothRandom, make_sim
    from hma_ros.model.checkpoint import CheckpointError
    from hma_ros.runtime.world_model import WorldModel

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        wm = WorldModel.load(args.ckpt, args.embodiment, temperature=args.temperature)
    except (CheckpointError, ValueError) as e:
        raise CliError(str(e)) from None
    try:
        emb = embodiment_from_dict_loose(wm.config["embodiments"][args.embodiment]["embodiment"], f"{args.ckpt} config")
    except (DatasetError, KeyError) as e:
        raise CliError(f"{args.ckpt}: no usable embodiment record for {args.embodiment} ({e})") from None
    if not emb.sim:
        raise CliError(f"{args.embodiment} has no simulator (its embodiment config names no `sim`)")
    sim = make_sim(emb.sim)
    if abs(sim.info.control_hz - emb.action_hz) > 1e-6 or sim.info.action_dim != wm.action_dim:
        raise CliError(f"{emb.sim} runs at {sim.info.control_hz} Hz x {sim.info.action_dim}-D, the checkpoint's "
                       f"{args.embodiment} stem expects {emb.action_hz} Hz x {wm.action_dim}-D")
    stride = wm.stride
    steps = int(round(args.seconds * emb.action_hz / stride))
    spec = emb.image_spec
    arms: dict[str, list[dict]] = {"model act()": [], "random": []}
    if args.scripted:
        arms["scripted"] = []
    ms = []
    t0 = time.time()
    gif_frames = None
    for arm in arms:
        rng = np.random.default_rng(args.seed)
        for ep in tqdm(range(args.episodes), desc=arm, unit="episode"):
            seed = SEED_BASE + args.seed * 10_000 + ep
            if arm == "model act()":
                def choose():
                    t = time.perf_counter()
                    c = wm.act(samples=args.act_samples)
                    ms.append(1e3 * (time.perf_counter() - t))
                    return c
                row, frames = run_episode(sim, spec, stride, steps, seed, choose, wm)
                if ep == 0:
                    gif_frames = frames
            else:
                if arm == "random":
                    pol = SmoothRandom(sim.info, rng)
                else:
                    pol = Policy(sim, "expert", rng)
                row, _ = run_episode(sim, spec, stride, steps, seed, lambda pol=pol: [pol() for _ in range(stride)])
            arms[arm].append(row)
    sim.close()
    results = {"checkpoint": str(args.ckpt), "embodiment": args.embodiment, "episodes": args.episodes,
               "temperature": args.temperature, "act_samples": args.act_samples,
               "seconds": args.seconds, "seeds": f"{SEED_BASE + args.seed * 10_000}..+{args.episodes - 1}",
               "act_ms_p50": float(np.percentile(ms, 50)) if ms else None,
               "wall_s": round(time.time() - t0, 1),
               "arms": {arm: summarize(rows) for arm, rows in arms.items()}}
    keys = [k for k in SCORES.get(emb.sim, ()) if k in arms["random"][0]] or list(arms["random"][0])
    print(f"{args.embodiment}: {args.episodes} episodes of {args.seconds:g} s per arm (mean ± s.e.m.)")
    print("| arm | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for arm, s in results["arms"].items():
        print(f"| {arm} | " + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['sem']:.3f}" for k in keys) + " |")
    print(f"act() p50 {results['act_ms_p50']:.1f} ms; {results['wall_s']} s")
    if args.gif and gif_frames:
        import imageio.v2 as imageio

        Path(args.gif).parent.mkdir(parents=True, exist_ok=True)
        imageio.mimsave(args.gif, gif_frames, duration=0.5, loop=0)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0
