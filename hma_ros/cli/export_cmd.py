"""`hma export --ckpt RUN --out models/NAME`: a shippable copy of a checkpoint -- float16
weights and config only (no optimizer state, logs or samples)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="export a checkpoint for shipping (fp16 weights + config)")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.model.checkpoint import WEIGHTS, CheckpointError, load_checkpoint, save_checkpoint
    from hma_ros.runtime.world_model import build_models

    try:
        config, state = load_checkpoint(args.ckpt)
        build_models(config, state, args.ckpt)  # refuse to ship something that does not load
    except CheckpointError as e:
        raise CliError(str(e)) from None
    out = save_checkpoint(Path(args.out), state, config, dtype=None if args.fp32 else torch.float16)
    size = (out / WEIGHTS).stat().st_size / 2**20
    print(f"exported {args.ckpt} -> {out} ({size:.1f} MB, {'fp32' if args.fp32 else 'fp16'})")
    return 0
