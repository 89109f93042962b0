"""The one checkpoint format: a directory with `model.safetensors` (weights, never pickle) and
`config.yaml` (human-readable: tokenizer, dynamics model, embodiments with normalization stats,
provenance). Loading checks both files and names what is wrong and what to do."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import yaml

WEIGHTS, CONFIG = "model.safetensors", "config.yaml"


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, state: dict[str, torch.Tensor], config: dict,
                    dtype: torch.dtype | None = None) -> Path:
    """Write weights then config, each to a temp file renamed into place (os.replace is atomic),
    leaving other files in the directory (logs, samples) alone. `dtype` casts float weights."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    tmp_w, tmp_c = path / f".{WEIGHTS}.tmp-{os.getpid()}", path / f".{CONFIG}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp_w), metadata={"format": "hma_ros"})
    os.chmod(tmp_w, 0o644)  # safetensors writes 0600; checkpoints are meant to be shared (nodes, other users)
    config = dict(config)
    config["saved"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp_c.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp_w, path / WEIGHTS)
    os.replace(tmp_c, path / CONFIG)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, float32 state dict) from a checkpoint directory."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint directory (expected {WEIGHTS} + {CONFIG} inside)")
    missing = [f for f in (WEIGHTS, CONFIG) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)}; copy the whole checkpoint folder")
    try:
        config = yaml.safe_load((path / CONFIG).read_text())
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path / CONFIG}: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path / CONFIG}: expected a mapping")
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path / WEIGHTS}: corrupt or not a safetensors file ({e}); "
                              "re-download or retrain the checkpoint") from None
    return config, {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """One part's weights of a checkpoint state ("tokenizer" or "dynamics"), prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def model_state(tokenizer: torch.nn.Module, dynamics: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint state of a tokenizer (+ dynamics): `tokenizer.*` and `dynamics.*` weights.
    The inverse of sub_state; the one place the layout is written."""
    state = {f"tokenizer.{k}": v for k, v in tokenizer.state_dict().items()}
    if dynamics is not None:
        state |= {f"dynamics.{k}": v for k, v in dynamics.state_dict().items()}
    return state
