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
