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
    from hma_ros.data.images import write_video
    from hma_ros.evaluation.rollout import (
        RolloutError,
        episode_rollout,
        read_chunks,
        side_by_side,
    )
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint
    from hma_ros.runtime.world_model import WorldModel

    try:
        config, _ = load_checkpoint(args.ckpt)
        ds = Dataset(args.data) if args.data else None
        emb = args.embodiment or (ds.name if ds else next(iter(config["embodiments"])))
        wm = WorldModel.load(args.ckpt, emb, seed=args.seed, mask_steps=args.steps, temperature=args.temperature,
                             render=args.render)
        if ds is not None:
            frames, truth = episode_rollout(wm, ds, args.episode, args.horizon, args.random_actions, args.seed)
            frames = side_by_side(truth, frames)
        elif not args.image or not args.actions:
            raise CliError("give --data DATASET, or --image PNG with --actions FILE")
        else:
            chunks = read_chunks(args.actions, wm.stride, wm.action_dim, emb)
            wm.observe(imageio.imread(args.image)[..., :3].astype(np.uint8))
            frames = wm.imagine(chunks)
    except (CheckpointError, DatasetError, RolloutError, ValueError) as e:
        raise CliError(str(e)) from None
    out = write_video(frames, args.out, args.fps)
    print(f"wrote {len(frames)} imagined frames to {out}" + (" (truth | imagined)" if ds is not None else ""))
    return 0
