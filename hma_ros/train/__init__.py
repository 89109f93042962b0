"""Training library: tokenizer and dynamics training loops, token caches, resumable state.

The `hma train*` commands are argument parsing plus one call into here; errors a user can fix
are raised as TrainError (the command prints them as one message, exit status 2)."""


class TrainError(ValueError):
    """A training run cannot start or continue for a reason the user can fix (the message says which)."""


def training_device(name: str):
    """--device: 'cpu' or 'cuda[:N]' (hma_ros.runtime.device), checked before anything is loaded or
    written; a bad one is a TrainError."""
    from hma_ros.runtime.device import DeviceError, resolve_device

    try:
        return resolve_device(name, "--device")
    except DeviceError as e:
        raise TrainError(str(e)) from None


PRECISIONS = ("fp32", "bf16")


def training_autocast(device, precision: str):
    """--precision of the training commands: a context for their forward passes -- bf16 autocast, or
    nothing (fp32). Weights, gradients and optimizer state stay fp32 either way. An unknown
    precision is a TrainError; call it once before anything is written to check the option."""
    import torch

    if precision not in PRECISIONS:
        raise TrainError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def world_model_checkpoint(path: str, option: str) -> tuple[dict, dict]:
    """(config, state) of the HMA world model at `path`, given as `option` (e.g. --trunk); a
    missing or broken checkpoint, or a tokenizer-only one, is a TrainError naming the option."""
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint

    try:
        config, state = load_checkpoint(path)
    except CheckpointError as e:
        raise TrainError(f"{option}: {e}") from None
    if "dynamics" not in config:
        raise TrainError(f"{option} {path}: a tokenizer, not an HMA checkpoint (no dynamics; hma train makes one)")
    return config, state
