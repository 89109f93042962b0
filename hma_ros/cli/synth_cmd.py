"""`hma synth`: synthetic (video, action) data from a world model (paper Sec. 5.4).

Each of the first N fully valid episodes of DATA (one embodiment's dataset) starts from its
first `prompt` real frames (default: the model's prompt); its recorded action chunks are then
replayed through the model for the whole episode, every imagined frame observed as the next.
Writes an hma dataset (OUT/<embodiment>) or, with --format lerobot, a LeRobot v3 folder OUT
whose rows are the native-rate commands and whose frames are the imagined ones (each 2 Hz frame
held over its chunk). Imagined frames are marked: meta.json `synthetic` / info.json `hma`, and a
per-row `synthetic` column in LeRobot.

    hma synth --ckpt models/hma_discrete_moves --data data/sim/pusht --episodes 100 --out data/synth
    hma synth ... --format lerobot --out data/synth_lerobot
"""

from __future__ import annotations

import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="synthetic episodes from a world model (hma or LeRobot v3)", description=__doc__,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True, help="one embodiment's dataset (e.g. data/sim/pusht)")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--format", default="hma", choices=("hma", "lerobot"))
    p.add_argument("--prompt", type=int, default=None, help="real frames per episode before imagining")
    p.add_argument("--skip", type=int, default=0, help="start after this many usable source episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mask-steps", type=int, default=2, help="MaskGIT unmasking steps per imagined frame "
                   "(default %(default)s, as the nodes)")
    p.add_argument("--mask-order", default="random", choices=("random", "confidence"),
                   help="which tokens each unmasking step decides (default %(default)s)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.data.lerobot import LeRobotError
    from hma_ros.runtime.synth import SynthError, synthesize

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.episodes < 1:
        raise CliError(f"--episodes must be >= 1, got {args.episodes}")
    try:
        res = synthesize(args.ckpt, args.data, args.episodes, args.out, args.format, args.prompt, args.seed,
                         args.overwrite, skip=args.skip, mask_steps=args.mask_steps, mask_order=args.mask_order)
    except (SynthError, LeRobotError) as e:
        raise CliError(str(e)) from None
    print(json.dumps(res))
    return 0
