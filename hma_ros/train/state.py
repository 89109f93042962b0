"""Training-side helpers shared by `hma train`, `hma eval` and tests: token caches of datasets,
window batches, and resumable training state in safetensors (never pickle)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from hma_ros.data.dataset import Dataset
from hma_ros.model.metrics import moving_tokens


class TokenizedDataset:
    """A dataset with every frame pre-encoded by a tokenizer: codes (N, S, K) uint8 in memory."""

    def __init__(self, ds: Dataset, tokenizer, batch: int = 256, progress: bool = True, device=None):
        from tqdm import tqdm

        self.ds = ds
        frames = ds.arrays["frames"]
        chunks = []
        with torch.no_grad():
            for i in tqdm(range(0, len(ds), batch), desc=f"tokenize {ds.name}", disable=not progress, leave=False):
                z = tokenizer.encode(torch.from_numpy(np.array(frames[i:i + batch])).to(device or "cpu")).cpu()
                chunks.append(z.to(torch.float16) if z.is_floating_point() else z.to(torch.uint8))
        self.codes = torch.cat(chunks)  # (N, S, K) FSQ codes (uint8) or soft tokens (float16)
        self.actions = torch.from_numpy(np.array(ds.arrays["actions"]))
        self.valid = torch.from_numpy(ds.valid())
        grid = math.isqrt(self.codes.shape[1])
        moving = []  # (N, S) bool: the token's patch moved since the previous frame (motion_weight)
        for i in range(0, len(ds), batch):
            lo = max(i - 1, 0)  # one frame of overlap, so each chunk's first frame has its predecessor
            moving.append(torch.from_numpy(moving_tokens(np.array(frames[lo:i + batch]), grid)[i - lo:]))
        self.moving = torch.cat(moving)

    def batch(self, starts, T: int):
        """codes (B, T, S, K), raw action chunks (B, T, stride, dim), valid (B, T), moving (B, T, S)."""
        idx = torch.as_tensor(np.asarray(starts))[:, None] + torch.arange(T)[None]
        c = self.codes[idx]
        return (c.float() if c.is_floating_point() else c.long()), self.actions[idx], self.valid[idx], self.moving[idx]


def embodiment_record(ds: Dataset) -> dict:
    m = ds.meta
    return {"stride": m["stride"], "action_dim": m["action_dim"], "action_hz": m["action_hz"],
            "stats": {k: m["stats"][k] for k in ("mean", "std", "min", "max")},
            "embodiment": m["embodiment"]}


def _param_names(opt: torch.optim.Optimizer, model: torch.nn.Module | None) -> list[str]:
    """The optimizer's parameters in its own order, named by the model (index when unnamed)."""
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    params = [p for g in opt.param_groups for p in g["params"]]
    return [names.get(id(p), str(i)) for i, p in enumerate(params)]


def optimizer_state_tensors(opt: torch.optim.Optimizer, model: torch.nn.Module | None = None
                            ) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer state dict into tensors + JSON-able metadata. Per-parameter state is
    keyed by the parameter's name in `model`, so a resume does not depend on the order in which
    modules happen to be registered (a code change may reorder them; shapes then mismatch)."""
    sd = opt.state_dict()
    names = _param_names(opt, model)
    tensors, meta = {}, {"param_groups": sd["param_groups"], "scalars": {}, "param_names": names}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{names[pid]}.{k}"] = v
            else:
                meta["scalars"][f"{names[pid]}.{k}"] = v
    return tensors, meta


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                         model: torch.nn.Module | None = None) -> None:
    """Inverse of optimizer_state_tensors: name-keyed state goes to the parameter of that name
    wherever it now sits (a name the model has since renamed -- `model.current_name` -- under its
    new name); states saved before names were recorded fall back to indices."""
    saved = meta.get("param_names") or [str(i) for i in range(len(_param_names(opt, None)))]
    now = {n: i for i, n in enumerate(_param_names(opt, model if "param_names" in meta else None))}
    rename = getattr(model, "current_name", None)
    if rename is not None and "param_names" in meta:
        for n in saved:
            if n not in now and rename(n) in now:
                now[n] = now[rename(n)]
    missing = [n for n in saved if n not in now]
    if missing:
        raise ValueError(f"optimizer state names parameters this model lacks: {', '.join(missing[:5])}")
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            name, k = key[4:].rsplit(".", 1)
            state.setdefault(now[name], {})[k] = v
    for key, v in meta["scalars"].items():
        name, k = key.rsplit(".", 1)
        state.setdefault(now[name], {})[k] = v
    groups = [dict(g) for g in meta["param_groups"]]
    for g, cur in zip(groups, opt.state_dict()["param_groups"], strict=True):
        g["params"] = cur["params"]  # the current order; state above is already mapped onto it
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_train_state(path: Path, opt, step: int, sampler_rng: np.random.Generator, extra: dict,
                     model: torch.nn.Module | None = None) -> None:
    from safetensors.torch import save_file

    tensors, meta = optimizer_state_tensors(opt, model)
    tensors["rng.torch"] = torch.get_rng_state()
    meta.update({"step": step, "sampler_rng": sampler_rng.bit_generator.state, **extra})
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.rename(path)
    path.with_suffix(".json").write_text(json.dumps(meta, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def load_train_state(path: Path, opt, sampler_rng: np.random.Generator,
                     model: torch.nn.Module | None = None) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    load_optimizer_state(opt, tensors, meta, model)
    torch.set_rng_state(tensors["rng.torch"])
    sampler_rng.bit_generator.state = meta["sampler_rng"]
    return meta
