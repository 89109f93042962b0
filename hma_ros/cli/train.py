"""`hma train`: pretrain HMA dynamics on a mixture of embodiments, or finetune a new one.
The token kind follows the tokenizer: FSQ -> discrete MaskGIT model, continuous -> MAR model.

    hma train --data data/sim --embodiments pusht,reacher,cheetah --tokenizer runs/tokenizer \\
              --out runs/hma --steps 4000
    hma train --data data/sim --embodiments manipulator --init runs/hma --freeze-trunk --out runs/ft
    hma train --data data/sim --init models/hma_mar_small --tokenizer models/tokenizer_cont \\
              --trunk models/hma_discrete_moves --out runs/mar   # a MAR model on a discrete model's trunk
    hma train ... --resume            # continue runs/hma from its last checkpoint
    torchrun --nproc_per_node 2 -m hma_ros.cli.main train ...   # DDP (gloo on CPU)

Checkpoints (safetensors + config.yaml) go to OUT every --save-every steps and at the end;
OUT/train_state.safetensors (+ .json) holds optimizer, schedule position, RNG and data-sampler
state for --resume. A non-finite loss stops training and keeps the last good checkpoint.
The loop lives in hma_ros/train/dynamics.py.
"""

from __future__ import annotations

import argparse


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train (pretrain or finetune) the dynamics model", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", help="dataset folders (or folders of datasets)")
    p.add_argument("--embodiments", help="comma-separated subset of the datasets to train on (default: all)")
    p.add_argument("--mixture", help="batch shares per embodiment, e.g. pusht=0.6,reacher=0.2,cheetah=0.2 "
                                     "(default: proportional to (windows)^(1/3), the paper's rule)")
    p.add_argument("--tokenizer", help="tokenizer checkpoint (hma train-tokenizer); with --init it replaces the "
                   "checkpoint's tokenizer (same levels; the data is tokenized anew; on another token grid, e.g. 16x16 "
                   "tokens under an 8x8 model, the position embeddings are resampled to it)")
    p.add_argument("--init", help="start from this HMA checkpoint (finetuning); new embodiments get a new stem+head")
    p.add_argument("--trunk", metavar="CKPT",
                   help="start the shared trunk, the stems and the slot embeddings from this HMA checkpoint of the "
                        "same geometry, of either token kind (e.g. a discrete model that moves the robot, under a "
                        "MAR model's token pathway); the token pathway and action heads stay the model's own")
    p.add_argument("--freeze-trunk", action="store_true", help="with --init: train only the new stems/heads")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue OUT from its train_state")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--minutes", type=float, default=0.0, help="also stop after this wall time (0: no limit); the learning-rate cosine then ends at "
                        "whichever of --steps and --minutes comes first")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--d-model", type=int, default=192)
    p.add_argument("--layers", type=int, default=None,
                   help="trunk blocks (new models: default 4); with --init, more than the checkpoint's appends "
                        "blocks that start as identities (adaLN-Zero gates at zero), so the deeper model first "
                        "predicts exactly as the loaded one")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--prompt", type=int, default=4)
    p.add_argument("--conditioning", default="modulate+concat",
                   help="modulate+concat | modulate | concat | add | cross | none")
    p.add_argument("--objective", default=None,
                   help="forward | passive | full | policy (default: forward; with --init the loaded model's; "
                        "--init X --objective passive: X's weights as a passive control that never sees actions)")
    p.add_argument("--action-encoding", default="mlp", choices=("mlp", "fourier"),
                   help="stems: an MLP on normalized chunks, or on their Fourier features too (new models)")
    p.add_argument("--action-points", type=int, default=None,
                   help="learned 2-D points per action whose heatmaps are added to the image tokens "
                        "(0: off, the default; with --init a map is added, starting at zero)")
    p.add_argument("--factor-ar", type=int, default=None,
                   help="discrete: width of intra-token autoregression, each FSQ factor's logits seeing the "
                        "factors before it so a token is drawn as one code (0: independent factors, the "
                        "default; with --init it is added, starting at zero)")
    p.add_argument("--corrupt-prob", type=float, default=None,
                   help="share of visible tokens replaced by random ones (default 0, or --init's)")
    p.add_argument("--action-drop", type=float, default=None,
                   help="action dropout: share of samples that see every action as unknown (default 0, or --init's)")
    p.add_argument("--self-prob", type=float, default=None,
                   help="self-forcing: share of samples whose visible tokens are the model's own greedy drawing "
                        "from a first, gradient-free pass (default 0, or --init's)")
    p.add_argument("--motion-weight", type=float, default=None,
                   help="loss weight of tokens whose image patch moved since the previous frame (MAR: of their denoising loss) "
                        "(default 1 = plain mean, or --init's; applies to --init runs too)")
    p.add_argument("--state-weight", type=float, default=None,
                   help="weight of an auxiliary loss: each slot's change of the dataset's recorded state (its "
                        "state_keys, e.g. PushT's block pose) predicted from that slot's image tokens by a "
                        "training-only head; datasets without state are trained as before (default 0 = off, or "
                        "--init's)")
    p.add_argument("--ddim-steps", type=int, default=10,
                   help="continuous (MAR) models: DDIM steps per token at sampling (stored in the checkpoint)")
    p.add_argument("--save-every", type=int, default=500,
                   help="steps between checkpoints and train_state (0: only at the end; default %(default)s)")
    p.add_argument("--eval-every", type=int, default=1000,
                   help="steps between quick held-out evals + sample GIF (0: never; default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu",
                   help="cpu | cuda[:N] (default %(default)s); checkpoints and train_state are written for the CPU, so a "
                        "run resumes on either; the quick held-out eval (--eval-every) runs on the CPU only")
    p.add_argument("--fp16", action="store_true", help="store final weights in float16 (shipping)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="the forward pass and loss under bf16 autocast (weights, gradients and optimizer stay "
                        "fp32): for GPUs, and CPUs with bf16 units (AVX512_BF16 or AMX; on 2 such cores 1.6x "
                        "the fp32 steps/s at batch 8, the same losses; elsewhere it is slower); default %(default)s")
    p.add_argument("--token-cache", default=None, metavar="DIR",
                   help="where each dataset folder's tokens are kept between runs with the same token code (a "
                        "decoder-only tokenizer run keeps it): 'off', or a folder (default: $HMA_TOKEN_CACHE, "
                        "else ~/.cache/hma_ros/tokens)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hma_ros.cli import CliError, options
    from hma_ros.train import TrainError
    from hma_ros.train.dynamics import DynamicsTraining, train_dynamics

    try:
        return train_dynamics(options(DynamicsTraining, args))
    except TrainError as e:
        raise CliError(str(e)) from None
