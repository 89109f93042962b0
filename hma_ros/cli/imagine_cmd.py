"""`hma imagine --ckpt C`: an offline rollout to a GIF/MP4 for people to look at.

    hma imagine --ckpt models/hma_discrete_small --data data/sim/pusht --episode 3 --horizon 24
    hma imagine --ckpt C --embodiment pusht --image start.png --actions plan.npy --out plan.gif

From a dataset episode: P prompt steps, then `--horizon` imagined frames with the episode's
true actions (or --random-actions); the output shows truth | imagined while truth lasts. From an
image: the image is the first frame; actions come from a .npy/.csv of shape (K, stride, dim)
(or (K*stride, dim)), in the embodiment's units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hma_ros.runtime import RENDER_MODES


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="offline rollout to a GIF/MP4", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--embodiment")
    p.add_argument("--data", help="a dataset folder to take the prompt (and true actions) from")
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--image", help="start from this image instead of a dataset")
    p.add_argument("--actions", help="with --image: .npy or .csv of action chunks")
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--random-actions", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default; best PSNR in our sweep)")
    p.add_argument("--render", default="residual", choices=RENDER_MODES,
                   help="residual: keep the real frame's detail where nothing is predicted to change")
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--out", default="out/imagine.gif")
    p.set_defaults(func=run)


def run(args) -> int:
    import imageio.v2 as imageio

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import Dataset, DatasetError
    from hma_ros.evaluation.heldout import random_chunks
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint
    from hma_ros.runtime.world_model import WorldModel

    try:
        config, _ = load_checkpoint(args.ckpt)
        ds = Dataset(args.data) if args.data else None
    except (CheckpointError, DatasetError) as e:
        raise CliError(str(e)) from None
    emb = args.embodiment or (ds.name if ds else next(iter(config["embodiments"])))
    try:
        wm = WorldModel.load(args.ckpt, emb, seed=args.seed, mask_steps=args.steps, temperature=args.temperature,
                                render=args.render)
    except ValueError as e:
        raise CliError(str(e)) from None
    rng = np.random.default_rng(args.seed)
    stats = config["embodiments"][emb]["stats"]
    truth = None
    if ds is not None:
        if not 0 <= args.episode < len(ds.episodes):
            raise CliError(f"--episode {args.episode}: the dataset has episodes 0..{len(ds.episodes) - 1}")
        start, n = ds.episodes[args.episode]
        P = wm.dyn.cfg.prompt
        K = min(args.horizon, n - P) if not args.random_actions else args.horizon
        if n <= P:
            raise CliError(f"episode {args.episode} has {n} steps; needs more than the {P} prompt steps")
        w = ds.window(start, min(n, P + K))
        for frame, chunk in w.steps(P):
            wm.observe(frame, chunk)
        chunks = w.actions[P - 1:P - 1 + K]
        if args.random_actions or len(chunks) < K:
            chunks = random_chunks(stats, (K, wm.stride, wm.action_dim), rng)
        truth = w.frames[P:P + K]
    else:
        if not args.image or not args.actions:
            raise CliError("give --data DATASET, or --image PNG with --actions FILE")
        img = imageio.imread(args.image)[..., :3]
        a = np.load(args.actions) if args.actions.endswith(".npy") else np.loadtxt(args.actions, delimiter=",")
        try:
            chunks = np.asarray(a, np.float32).reshape(-1, wm.stride, wm.action_dim)
        except ValueError:
            raise CliError(f"{args.actions}: {np.shape(a)} cannot be read as (K, {wm.stride}, {wm.action_dim}) "
                           f"chunks for {emb}") from None
        wm.observe(img.astype(np.uint8))
    frames = wm.imagine(chunks)
    if truth is not None:
        pad = np.zeros_like(frames[0])
        frames = [np.concatenate([truth[i] if i < len(truth) else pad, f], axis=1) for i, f in enumerate(frames)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".mp4":
        imageio.mimsave(out, list(frames), fps=args.fps)
    else:
        imageio.mimsave(out, list(frames), duration=1.0 / args.fps, loop=0)
    print(f"wrote {len(frames)} imagined frames to {out}" + (" (truth | imagined)" if truth is not None else ""))
    return 0
