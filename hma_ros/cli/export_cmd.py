"""`hma export --ckpt RUN --out models/NAME`: a shippable copy of a checkpoint -- float16
weights and config only (no optimizer state, logs or samples).

`--decoder TOK` ships the checkpoint with TOK's tokenizer decoder: TOK must have been trained
with `hma train-tokenizer --init RUN --decoder-only`, so its encoder -- every frame's tokens, what
the dynamics model learned -- is the checkpoint's, bitwise (checked)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="export a checkpoint for shipping (fp16 weights + config)")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.add_argument("--decoder", help="take this tokenizer checkpoint's decoder (trained with train-tokenizer "
                                     "--decoder-only from --ckpt; its encoder must be --ckpt's)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.model.checkpoint import WEIGHTS, CheckpointError, load_checkpoint, save_checkpoint
    from hma_ros.runtime.world_model import build_models

    try:
        config, state = load_checkpoint(args.ckpt)
        if args.decoder:
            config, state = with_decoder(config, state, args.decoder)
        build_models(config, state, args.ckpt)  # refuse to ship something that does not load
    except CheckpointError as e:
        raise CliError(str(e)) from None
    out = save_checkpoint(Path(args.out), state, config, dtype=None if args.fp32 else torch.float16)
    size = (out / WEIGHTS).stat().st_size / 2**20
    print(f"exported {args.ckpt} -> {out} ({size:.1f} MB, {'fp32' if args.fp32 else 'fp16'})")
    return 0


def with_decoder(config: dict, state: dict, decoder: str) -> tuple[dict, dict]:
    """The checkpoint with the decoder of tokenizer checkpoint `decoder`, refused (CheckpointError)
    unless the two tokenizers share configuration and encoder weights exactly."""
    import torch

    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint

    dcfg, dstate = load_checkpoint(decoder)
    if dcfg.get("tokenizer") != config.get("tokenizer"):
        raise CheckpointError(f"--decoder {decoder}: its tokenizer configuration differs from the checkpoint's; "
                              "train it with hma train-tokenizer --init CKPT --decoder-only")
    enc = sorted(k for k in state if k.startswith("tokenizer.encoder."))
    same = enc == sorted(k for k in dstate if k.startswith("tokenizer.encoder.")) and all(
        torch.equal(state[k], dstate[k]) for k in enc)
    if not same:
        raise CheckpointError(f"--decoder {decoder}: its encoder is not the checkpoint's, so its tokens would not "
                              "be the ones the dynamics model learned; train it with hma train-tokenizer "
                              "--init CKPT --decoder-only")
    dec = [k for k in dstate if k.startswith("tokenizer.") and not k.startswith("tokenizer.encoder.")]
    state = {**state, **{k: dstate[k] for k in dec}}
    training = {**config.get("training", {}), "decoder": {"from": str(decoder), **dcfg.get("training", {})}}
    return {**config, "training": training}, state
