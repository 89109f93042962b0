"""`hma train-tokenizer`: train the discrete (FSQ) image tokenizer on dataset frames.

    hma train-tokenizer --data data/sim --out runs/tokenizer --minutes 15
    hma train-tokenizer --data data/sim --init models/hma_discrete_moves --decoder-only --out runs/dec
    hma train-tokenizer --data data/sim --init models/hma_discrete_moves --decoder-only \
        --imagined models/hma_discrete_moves --out runs/dec_imagined

The loop lives in hma_ros/train/tokenizer.py.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train the image tokenizer", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", help="dataset folders (or folders of datasets)")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=15.0, help="time budget (default %(default)s)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--channels", default="32,64,128")
    p.add_argument("--levels", default="8,8,8,5,5,5")
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--kind", default="fsq", choices=("fsq", "continuous"),
                   help="fsq: discrete tokens (MaskGIT); continuous: soft tokens (MAR)")
    p.add_argument("--latent-dim", type=int, default=8, help="continuous: channels per soft token")
    p.add_argument("--motion-weight", type=float, default=0.0,
                   help="extra loss weight on pixels that changed since the episode's previous frame "
                        "(what the actions move; 0: off)")
    p.add_argument("--init", help="continue from this checkpoint's tokenizer (same architecture)")
    p.add_argument("--decoder-only", action="store_true",
                   help="with --init: train the decoder only; the encoder, so every frame's tokens, stay bitwise "
                        "as loaded, and a dynamics model trained on them can take the new decoder "
                        "(hma export --decoder)")
    p.add_argument("--encoder", choices=("conv", "local"),
                   help="conv: one conv stack over the frame (GroupNorm); local: each token's patch encoded alone, "
                        "so a token's code depends on its own pixels only (default: the --init tokenizer's, else conv; "
                        "with --init of the other kind its conv weights carry over)")
    p.add_argument("--hard-share", type=float, default=0.0,
                   help="share of each batch drawn from the hardest frames: every --hard-every steps, 1,024 "
                        "training frames per embodiment are ranked by the loss of their worst-drawn token patch "
                        "and hard draws pick among the worst 64 (0: off; e.g. 0.25)")
    p.add_argument("--hard-every", type=int, default=250, help="steps between re-rankings of the hard frames")
    p.add_argument("--imagined", metavar="CKPT",
                   help="with --decoder-only: also train the decoder on this world model's imagined tokens paired with "
                        "the true frames they stand for (rollouts of the data's training windows with their true "
                        "actions), so it draws what the dynamics' codes mean -- e.g. a pushed block whose codes the "
                        "dynamics names only in part. The world model must share --init's code")
    p.add_argument("--imagined-share", type=float, default=0.5,
                   help="share of each batch from the imagined pairs (default %(default)s)")
    p.add_argument("--imagined-windows", type=int, default=300,
                   help="rollouts per embodiment to pair (default %(default)s; a tenth as many from held-out "
                        "episodes measure the imagined frames' PSNR before and after)")
    p.add_argument("--shift-weight", type=float, default=0.0,
                   help="weight of a penalty on how far a one-pixel move of a frame moves its code (the mean "
                        "absolute change of the pre-rounding latent, in FSQ levels): a code in which nearby poses "
                        "have nearby codes, so a dynamics model a level off draws the object a pixel off (0: off)")
    p.add_argument("--adv-weight", type=float, default=0.0,
                   help="weight of an adversarial loss on decoded frames (a PatchGAN discriminator, hinge loss, "
                        "balanced against the pixel loss by their gradients at the decoder's last layer): a decoder "
                        "that must draw frames a discriminator takes as real commits to one outcome where codes are "
                        "unsure instead of drawing their blurred mean -- with --imagined, the world model's codes "
                        "(0: off; VQGAN uses 0.8; the discriminator is not saved)")
    p.add_argument("--adv-start", type=int, default=200,
                   help="steps the discriminator trains alone before the decoder feels it (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N] (default %(default)s); the checkpoint is "
                                                   "written for the CPU either way")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="the training passes under bf16 autocast (weights, gradients, optimizer and losses stay "
                        "fp32): for GPUs, and CPUs with bf16 units (AVX512_BF16 or AMX: 1.5x the fp32 steps/s "
                        "on 2 such cores; elsewhere slower); the checkpoint is fp32 either way; default %(default)s")
    p.set_defaults(func=run)


def run(args) -> int:
    from hma_ros.cli import CliError, options
    from hma_ros.train import TrainError
    from hma_ros.train.tokenizer import TokenizerTraining, train_tokenizer

    try:
        return train_tokenizer(options(TokenizerTraining, args))
    except TrainError as e:
        raise CliError(str(e)) from None
