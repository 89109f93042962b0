"""Training-side helpers shared by `hma train`, `hma eval` and tests: token caches of datasets,
window batches, and resumable training state in safetensors (never pickle)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from hma_ros.data.dataset import Dataset
from hma_ros.model.metrics import moving_tokens

CACHE_VERSION = 1


def token_cache_dir(option: str | None = None) -> Path | None:
    """Where `hma train` keeps tokenized datasets: `option` (--token-cache), else
    $HMA_TOKEN_CACHE, else $XDG_CACHE_HOME/hma_ros/tokens (~/.cache/hma_ros/tokens); "off": nowhere."""
    value = option if option is not None else os.environ.get("HMA_TOKEN_CACHE", "")
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hma_ros" / "tokens"


def encoder_digest(tokenizer, device=None) -> str:
    """What a frame's tokens depend on: the tokenizer's config and every weight but the decoder's
    (a decoder-only run keeps the code, so it keeps the cache), and the device type (a GPU's
    rounding may pick another code at a boundary)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"v{CACHE_VERSION} {getattr(tokenizer, 'cfg', None)!r} {torch.device(device or 'cpu').type}".encode())
    for k, v in sorted(tokenizer.state_dict().items()):
        if not k.startswith("decoder."):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _frames_digest(frames: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(frames.shape).encode())
    step = 4096
    for i in range(0, len(frames), step):
        h.update(np.ascontiguousarray(frames[i:i + step]).data)
    return h.hexdigest()


class TokenizedDataset:
    """A dataset with every frame pre-encoded by a tokenizer: codes (N, S, K) uint8 in memory
    (soft tokens: float16), and the moving-token mask (N, S). With `cache` (a folder), each
    dataset folder's codes and mask are kept under a key of the encoder's weights and the frames'
    bytes, so the next run on the same frames and token code loads them instead of encoding
    (`hits` / `misses` count the parts)."""

    def __init__(self, ds: Dataset, tokenizer, batch: int = 256, progress: bool = True, device=None,
                 cache: Path | str | None = None):
        self.ds = ds
        self.hits = self.misses = 0
        enc = encoder_digest(tokenizer, device) if cache else ""
        codes, moving = [], []
        for part in getattr(ds, "parts", None) or [ds]:  # a merged dataset: each folder its own entry
            frames = part.arrays["frames"]
            path = Path(cache) / f"{enc}-{_frames_digest(frames)}.npz" if cache else None
            got = _load_cached(path, len(frames)) if path is not None else None
            if got is None:
                got = self._encode(frames, tokenizer, batch, progress, device, part.name)
                self.misses += 1
                if path is not None:
                    _store_cached(path, *got)
            else:
                self.hits += 1
            codes.append(got[0])
            moving.append(got[1])
        self.codes = torch.cat(codes)  # (N, S, K) FSQ codes (uint8) or soft tokens (float16)
        self.moving = torch.cat(moving)  # (N, S) bool: the token's patch moved since the previous frame
        self.actions = torch.from_numpy(np.array(ds.arrays["actions"]))
        self.valid = torch.from_numpy(ds.valid())
        # the recorded scene state (simulator ground truth), when the dataset has one (StateHead)
        self.states = torch.from_numpy(np.array(ds.arrays["state"])) if "state" in ds.arrays else None

    @staticmethod
    def _encode(frames, tokenizer, batch, progress, device, name) -> tuple[torch.Tensor, torch.Tensor]:
        from tqdm import tqdm

        chunks = []
        with torch.no_grad():
            for i in tqdm(range(0, len(frames), batch), desc=f"tokenize {name}", disable=not progress, leave=False):
                z = tokenizer.encode(torch.from_numpy(np.array(frames[i:i + batch])).to(device or "cpu")).cpu()
                chunks.append(z.to(torch.float16) if z.is_floating_point() else z.to(torch.uint8))
        codes = torch.cat(chunks)
        grid = math.isqrt(codes.shape[1])
        moving = []
        for i in range(0, len(frames), batch):
            lo = max(i - 1, 0)  # one frame of overlap, so each chunk's first frame has its predecessor
            moving.append(torch.from_numpy(moving_tokens(np.array(frames[lo:i + batch]), grid)[i - lo:]))
        return codes, torch.cat(moving)

    def batch(self, starts, T: int):
        """codes (B, T, S, K), raw action chunks (B, T, stride, dim), valid (B, T), moving (B, T, S)."""
        idx = torch.as_tensor(np.asarray(starts))[:, None] + torch.arange(T)[None]
        c = self.codes[idx]
        return (c.float() if c.is_floating_point() else c.long()), self.actions[idx], self.valid[idx], self.moving[idx]


    def state_batch(self, starts, T: int) -> torch.Tensor:
        """(B, T, n) recorded states of the same windows as batch()."""
        if self.states is None:
            raise ValueError(f"{self.ds.path}: the dataset records no state (meta state_keys is empty)")
        idx = torch.as_tensor(np.asarray(starts))[:, None] + torch.arange(T)[None]
        return self.states[idx]


def state_record(ds: Dataset, episodes: list[int] | None = None) -> dict | None:
    """What a StateHead predicts for a dataset: its state columns and the mean / std of one step's
    change of each within an episode (over `episodes`, default all). None without recorded state."""
    if "state" not in ds.arrays or not ds.meta.get("state_keys"):
        return None
    st = np.asarray(ds.arrays["state"], np.float64)
    keep = set(range(len(ds.episodes)) if episodes is None else episodes)
    deltas = [np.diff(st[a:a + n], axis=0) for i, (a, n) in enumerate(ds.episodes) if n > 1 and i in keep]
    d = np.concatenate(deltas) if deltas else np.zeros((1, st.shape[1]))
    d = d[np.isfinite(d).all(1)]
    if len(d) == 0:
        d = np.zeros((1, st.shape[1]))
    std = d.std(0)
    return {"keys": list(ds.meta["state_keys"]), "mean": d.mean(0).tolist(),
            "std": np.where(std > 1e-9, std, 1.0).tolist()}  # a column that never changes: target 0


def _load_cached(path: Path, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A cache entry, or None when absent or unreadable (it is then rebuilt and rewritten)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            codes, moving = z["codes"], z["moving"]
    except (OSError, ValueError, KeyError):
        return None
    if len(codes) != n or len(moving) != n:
        return None
    return torch.from_numpy(codes), torch.from_numpy(moving)


def _store_cached(path: Path, codes: torch.Tensor, moving: torch.Tensor) -> None:
    """Written beside and renamed, so a reader never sees half a file; a cache that cannot be
    written (read-only, full) only costs the next run its encoding."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, codes=codes.numpy(), moving=moving.numpy())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


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
